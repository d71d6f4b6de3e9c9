"""The server's event log: every load, unload, reload, request, pull and rejection, in order.

Each event is a plain dict ``{"seq", "t", "kind", "model", ...}`` where ``t`` is seconds since
the server started (monotonic clock). Kinds and their extra fields:

- ``load``: num_ctx, parallel, size, size_vram, memory_source (measured, reported or computed)
  and the figures behind size (``rss_growth_bytes_measured``, ``weights_bytes_reported``,
  ``weights_bytes_computed``, ``kv_cache_bytes_computed``), keep_alive (seconds, -1 = forever),
  load_duration, backend
- ``unload``: cause (keep_alive_expired, keep_alive_0, evicted_max_loaded, evicted_memory,
  reload, shutdown), num_ctx
- ``unload_ignored``: cause (a ``never_unload`` model asked to unload)
- ``reload``: changed (option names), old / new (their values), old_num_ctx, new_num_ctx
- ``request_start``: endpoint, options, keep_alive, think, format (bool), in_flight (requests
  running on that model, this one included)
- ``request_end``: endpoint, status, duration, prompt_eval_count, eval_count, done_reason, scripted;
  on chat and generate also num_ctx (the loaded context), prompt_tokens (the prompt's tokens before
  any cut) and truncated (whether messages or the prompt's head were dropped to fit, as Ollama does
  silently)
- ``pull``: status (success or error), error
- ``reject``: endpoint, error (the 503 text), queued

The log is bounded: past ``MAX_EVENTS`` the oldest events are dropped (``seq`` keeps counting),
so a server left running for days holds a fixed amount of memory.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

MAX_EVENTS = 10_000


class EventLog:
    """Thread-safe: the server appends from its event loop, tests read from their own thread."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._seq = 0
        self._start = time.monotonic()

    def record(self, kind: str, model: str | None, **fields: Any) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            event = {"seq": self._seq, "t": round(time.monotonic() - self._start, 6), "kind": kind, "model": model}
            event.update(fields)
            self._events.append(event)
            return event

    def select(self, kind: str | None = None, since: int = 0, model: str | None = None) -> list[dict[str, Any]]:
        """Events with ``seq > since``, optionally of one kind and one model."""
        with self._lock:
            return [
                dict(e)
                for e in self._events
                if e["seq"] > since and kind in (None, e["kind"]) and model in (None, e["model"])
            ]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


def max_in_flight(events: list[dict[str, Any]]) -> dict[str, int]:
    """Per model, the most requests that ran at once (from ``request_start`` events)."""
    peak: dict[str, int] = defaultdict(int)
    for event in events:
        if event["kind"] == "request_start":
            peak[event["model"]] = max(peak[event["model"]], event["in_flight"])
    return dict(peak)
