"""GPU tenancy: one tenant on the card at a time, every switch explicit and timed.

``whisper`` and ``diarizer`` run in this process; ``embedder`` and ``llm`` run inside Ollama.
Before a non-LLM tenant starts, every resident Ollama model is evicted (the embedding model
stays for ``embedder``) and /api/ps confirms it. The ``llm`` tenant warms the LLM with the
run's num_ctx, checks /api/ps for that context, and evicts it in a ``finally`` so it never
squats VRAM during the next stage. The timeline of acquire/release/evict/warm goes into the
asset's metadata.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from autorag_dagster.gpu.memory import release_memory
from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import OllamaError, OllamaUnreachableError
from autorag_dagster.ollama.names import canonical_name

TENANTS = ("whisper", "diarizer", "embedder", "llm")
IN_PROCESS_TENANTS = ("whisper", "diarizer")


class TenancyError(RuntimeError):
    """A tenant was requested while another one holds the GPU, or the name is unknown."""


class GpuTenancy:
    """Owns the GPU for one process: ``with tenancy.tenant("whisper"): ...``."""

    def __init__(self, client: OllamaClient, log: Callable[[str], Any] | None = None):
        self.client = client
        self.log = log or logging.getLogger(__name__).info
        self.timeline: list[dict[str, Any]] = []
        self.active: str | None = None
        self._lock = threading.Lock()
        self._t0, self._wall0 = time.monotonic(), time.time()

    def _record(self, event: str, tenant: str, started: float, **detail: Any) -> dict[str, Any]:
        now = time.monotonic()
        entry = {
            "event": event,
            "tenant": tenant,
            "at": datetime.fromtimestamp(self._wall0 + started - self._t0, UTC).isoformat(timespec="milliseconds"),
            "t_s": round(started - self._t0, 3),
            "duration_s": round(now - started, 3),
            **detail,
        }
        self.timeline.append(entry)
        extra = ", ".join(f"{k}={v}" for k, v in detail.items())
        self.log(f"GPU {event} [{tenant}] in {entry['duration_s']:.2f} s" + (f" ({extra})" if extra else ""))
        return entry

    def _clear_ollama(self, tenant: str) -> None:
        """Evict every resident model (the embedder keeps its own); each eviction is confirmed by /api/ps."""
        started = time.monotonic()
        try:
            evicted = self.client.evict_all(keep=[self.client.embed_model] if tenant == "embedder" else [])
        except OllamaUnreachableError as exc:
            if tenant not in IN_PROCESS_TENANTS:
                raise
            # Whisper and the diarizer do not need Ollama: a server that is not running holds no VRAM.
            self._record("ollama_unreachable", tenant, started, detail=str(exc).splitlines()[0])
            return
        if evicted:
            self._record("evict", tenant, started, model=", ".join(evicted))

    def _warm_llm(self, num_ctx: int) -> None:
        model = self.client.llm_model
        started = time.monotonic()
        load_s = self.client.warm(model, num_ctx)
        context = next(
            (m.context_length for m in self.client.ps() if canonical_name(m.name) == canonical_name(model)), None
        )
        self._record(
            "warm", "llm", started, model=model, num_ctx=num_ctx, context_length=context, load_s=round(load_s, 3)
        )
        if context != num_ctx:
            self.log(
                f"warning: {model} is resident with context {context}, not the requested num_ctx {num_ctx}"
                " (Ollama clips num_ctx to the model's trained context)"
            )

    @contextmanager
    def tenant(self, name: str, *, num_ctx: int | None = None) -> Iterator[GpuTenancy]:
        """Hold the GPU as ``name``; ``num_ctx`` (llm only) defaults to the client's run num_ctx."""
        if name not in TENANTS:
            raise TenancyError(f"Unknown GPU tenant {name!r}; expected one of {', '.join(TENANTS)}")
        with self._lock:
            if self.active is not None:
                raise TenancyError(
                    f"GPU tenant {name!r} requested while {self.active!r} holds the GPU;"
                    f" leave the {self.active!r} block first (one tenant per process)"
                )
            self.active = name
        started = time.monotonic()
        try:
            if name == "llm":
                self._warm_llm(num_ctx or self.client.num_ctx)
            else:
                self._clear_ollama(name)
            self._record("acquire", name, started)
            held = time.monotonic()
            try:
                yield self
            finally:
                self._release(name, held)
        finally:
            self.active = None

    def _release(self, name: str, held: float) -> None:
        if name == "llm":
            started = time.monotonic()
            try:
                self.client.evict(self.client.llm_model)
                self._record("evict", name, started, model=self.client.llm_model)
            except OllamaError as exc:
                self._record("evict_failed", name, started, model=self.client.llm_model, error=str(exc))
        started = time.monotonic()
        if name in IN_PROCESS_TENANTS:
            release_memory()
        self._record("release", name, started, held_s=round(started - held, 3))

    def timeline_markdown(self) -> str:
        """The timeline as a Markdown table for Dagster metadata."""
        rows = ["| t (s) | event | tenant | model | duration (s) | detail |", "| --- | --- | --- | --- | --- | --- |"]
        fixed = {"event", "tenant", "at", "t_s", "duration_s", "model"}
        for entry in self.timeline:
            detail = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in fixed).replace("|", "\\|")
            rows.append(
                f"| {entry['t_s']:.3f} | {entry['event']} | {entry['tenant']} | {entry.get('model', '')}"
                f" | {entry['duration_s']:.3f} | {detail} |"
            )
        return "\n".join(rows)
