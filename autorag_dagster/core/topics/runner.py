"""How a topic stage gets an answer from the model: cache, residency, re-asks, fallback bookkeeping.

``StageRunner.ask`` is the one way a stage gets an answer: the answer cache first; on a miss
the model is loaded (lazily, so a fully cached file never loads it), the client validates the
answer against the schema (re-asking itself), and the stage's judge checks it for sense, with
one re-ask that names the problems. Whatever is left unusable is replaced by a fallback that is
recorded. Connection, busy and missing-model errors are not caught here: they reach the user.

Every prompt must fit in the context beside the answer's room: ``fits`` and ``budget`` let a stage
plan windows before it asks, and a prompt that still does not fit (or whose answer shows the server
may have cut it) is raised as an error naming the stage and the setting to change. A re-ask that
would not fit is not sent: the first answer's problems stand.

Only answers that matched their schema are cached: an answer that never did is asked again on
the next run, so a transient failure (or a fix of the prompt) is never replayed as a result.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from autorag_dagster.core.topics import prompts
from autorag_dagster.core.topics.cache import AnswerCache
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import LLMOutputError, PromptTooLongError, PromptTruncatedError

T = TypeVar("T", bound=BaseModel)


class Fallback(BaseModel):
    stage: str
    node: str | None = None
    reason: str


@dataclass
class Answer(Generic[T]):
    """The last answer (None when none matched the schema) and what is still wrong with it."""

    value: T | None
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.value is not None and not self.problems


def model_fingerprint(client: OllamaClient) -> str:
    """A content address of the LLM: the hash of its /api/show answer (weights' details, template,
    parameters, modification time), so a re-pulled or different model never reuses old answers."""
    shown = client.show(client.llm_model)
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()


class LlmResidency:
    """The LLM's stay on the GPU across one file or many: loaded through the tenancy on the
    first cache miss with the num_ctx asked for, reloaded only when num_ctx changes (each
    reload listed in ``loads``), evicted on ``close`` (the tenancy's ``finally``).

    One residency shared by the files of a run keeps the model loaded once for all of them.
    """

    def __init__(self, client: OllamaClient, tenancy: GpuTenancy):
        self.client, self.tenancy = client, tenancy
        self.loads: list[dict] = []
        self._loaded_ctx: int | None = None
        self._stack = ExitStack()
        self._lock = threading.Lock()  # held while a load runs, so concurrent misses wait for it

    def ensure(self, num_ctx: int) -> None:
        """A caller that already holds the ``llm`` tenant has warmed it with the run's num_ctx."""
        with self._lock:
            if self._loaded_ctx is None and self.tenancy.active == "llm":
                self._loaded_ctx = self.client.num_ctx
            if self._loaded_ctx == num_ctx:
                return
            started = time.monotonic()
            if self._loaded_ctx is None:
                self._stack.enter_context(self.tenancy.tenant("llm", num_ctx=num_ctx))
                reason = "first request that missed the cache"
            else:
                self.client.warm(num_ctx=num_ctx)
                reason = f"num_ctx changes from {self._loaded_ctx} to {num_ctx}"
            self.loads.append({"num_ctx": num_ctx, "seconds": round(time.monotonic() - started, 3), "reason": reason})
            self._loaded_ctx = num_ctx

    def close(self) -> None:
        """Leave the tenant if this residency entered it, which evicts the model."""
        self._stack.close()
        self._loaded_ctx = None

    def __enter__(self) -> LlmResidency:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StageRunner:
    """Cache, residency, re-asks and fallback bookkeeping for one file's stages.

    Requests in flight are counted once, by the client (``client.stats``); the runner only
    reads the peak reached while it ran (``max_in_flight``).
    """

    def __init__(
        self,
        client: OllamaClient,
        tenancy: GpuTenancy,
        cache: AnswerCache | None,
        *,
        num_ctx_l1: int | None = None,
        residency: LlmResidency | None = None,
    ):
        self.client, self.tenancy, self.cache = client, tenancy, cache
        self.num_ctx, self.num_ctx_l1 = client.num_ctx, num_ctx_l1
        self.fingerprint = model_fingerprint(client) if cache is not None else ""
        self.fallbacks: list[Fallback] = []
        self.cache_hits = self.cache_misses = self.semantic_retries = 0
        self.reasks_rescued = 0  # re-asks whose answer was accepted
        self.reask = True  # a stage turns it off once this file's re-asks have fixed no answer
        self.windows: Counter[str] = Counter()  # per stage, prompts made of windows because the whole did not fit
        self._owns_residency = residency is None
        self.residency = residency or LlmResidency(client, tenancy)
        self._first_load = len(self.residency.loads)
        self._lock = threading.Lock()  # counters and lists, shared by the fan-out threads
        # The client's peak is reset to what is in flight now and restored (as the larger of the
        # two) on close, so this file's peak is readable without a second counter.
        stats = client.stats
        with stats._lock:
            self._peak_before = stats.max_in_flight
            stats.max_in_flight = stats.in_flight
        self._peak: int | None = None

    # --- residency ---------------------------------------------------------------------------

    @property
    def loads(self) -> list[dict]:
        """The loads and reloads this file's stages caused."""
        return self.residency.loads[self._first_load :]

    @property
    def max_in_flight(self) -> int:
        """The most requests the client had in flight while these stages ran."""
        return self._peak if self._peak is not None else self.client.stats.max_in_flight

    def close(self) -> None:
        """Evict the model, unless the residency is shared with other files (its owner closes it)."""
        stats = self.client.stats
        if self._peak is None:
            with stats._lock:
                self._peak = stats.max_in_flight
                stats.max_in_flight = max(self._peak_before, self._peak)
        if self._owns_residency:
            self.residency.close()

    # --- the prompt's budget ------------------------------------------------------------------

    def budget(self, num_ctx: int | None = None) -> int:
        """Tokens a prompt may hold at ``num_ctx`` (the run's by default) beside the answer's room."""
        return self.client.prompt_budget(num_ctx or self.num_ctx)

    def tokens(self, messages: prompts.Messages) -> int:
        """The client's conservative estimate of the prompt's size."""
        return self.client.estimate_tokens(messages)

    def fits(self, messages: prompts.Messages, num_ctx: int | None = None) -> bool:
        return self.tokens(messages) <= self.budget(num_ctx)

    def _setting(self, num_ctx: int | None) -> str:
        return "AUTORAG_NUM_CTX_L1" if num_ctx and num_ctx != self.num_ctx else "AUTORAG_NUM_CTX"

    def too_long(self, stage: str, messages: prompts.Messages, num_ctx: int | None = None) -> PromptTooLongError:
        """The error for a prompt that cannot fit even alone: it names the stage, the sizes and the setting."""
        return PromptTooLongError(
            self.client.llm_model,
            self.tokens(messages),
            num_ctx or self.num_ctx,
            self.client.max_output_tokens,
            stage=stage,
            setting=self._setting(num_ctx),
        )

    def windowed(self, stage: str, count: int) -> None:
        if count > 1:
            with self._lock:
                self.windows[stage] += count

    # --- asking --------------------------------------------------------------------------------

    def cache_key(self, messages: prompts.Messages, schema: type[BaseModel], num_ctx: int) -> str:
        """Everything that shapes an answer: model, prompt version, options, re-asks, messages, schema."""
        options = {
            "num_ctx": num_ctx,
            "num_predict": self.client.max_output_tokens,
            "temperature": self.client.temperature,
            "think": False,
            "validation_retries": self.client.validation_retries,
            "prompt_version": prompts.PROMPT_VERSION,
        }
        return AnswerCache.key(
            model_digest=self.fingerprint, options=options, messages=messages, schema=schema.model_json_schema()
        )

    def _cached(self, key: str, schema: type[T]) -> tuple[T, str] | None:
        """A stored answer that still validates; a miss otherwise (a stored failure is a miss too)."""
        entry = self.cache.get(key)
        if entry is not None and isinstance(entry.get("raw"), str):
            try:
                return schema.model_validate_json(entry["raw"]), entry["raw"]
            except ValidationError:
                return None
        return None

    def _chat(self, messages: prompts.Messages, schema: type[T], num_ctx: int, stage: str) -> tuple[T | None, str]:
        """(value, raw) from the cache or the model; (None, why) when no answer matched the schema."""
        key = ""
        if self.cache is not None:
            key = self.cache_key(messages, schema, num_ctx)
            hit = self._cached(key, schema)
            if hit is not None:
                with self._lock:
                    self.cache_hits += 1
                return hit
        with self._lock:
            self.cache_misses += 1
        self.residency.ensure(num_ctx)
        try:
            result = self.client.chat_structured(messages, schema, num_ctx=num_ctx)
        except LLMOutputError as exc:
            return None, str(exc)
        except (PromptTooLongError, PromptTruncatedError) as exc:
            raise exc.at(stage, self._setting(num_ctx)) from None
        if self.cache is not None:
            self.cache.put(key, {"raw": result.raw})
        return result.value, result.raw

    def ask(
        self,
        messages: prompts.Messages,
        schema: type[T],
        judge: Callable[[T], list[str]],
        *,
        stage: str,
        num_ctx: int | None = None,
    ) -> Answer[T]:
        """An answer judged for sense, re-asked once with the problems named if it makes none (and
        the re-ask fits in the context). ``stage`` names the step in a prompt-size error."""
        num_ctx = num_ctx or self.num_ctx
        if not self.fits(messages, num_ctx):
            raise self.too_long(stage, messages, num_ctx)
        value, raw = self._chat(messages, schema, num_ctx, stage)
        if value is None:
            return Answer(None, [raw])
        problems = judge(value)
        if not problems:
            return Answer(value)
        if not self.reask:
            return Answer(value, [*problems, "not re-asked: this file's earlier re-asks fixed no answer"])
        reask = prompts.reask_messages(messages, raw, problems)
        if not self.fits(reask, num_ctx):
            return Answer(value, [*problems, f"not re-asked: the re-ask would not fit in num_ctx {num_ctx}"])
        with self._lock:
            self.semantic_retries += 1
        again, raw_again = self._chat(reask, schema, num_ctx, stage)
        if again is None:
            return Answer(value, [*problems, raw_again])
        answer = Answer(again, judge(again))
        if answer.usable:
            with self._lock:
                self.reasks_rescued += 1
        return answer

    def reasks_useless(self) -> bool:
        """Whether this file's model was re-asked and fixed none of those answers."""
        with self._lock:
            return self.semantic_retries > 0 and self.reasks_rescued == 0

    def fallback(self, stage: str, node: str | None, problems: list[str]) -> None:
        with self._lock:
            self.fallbacks.append(Fallback(stage=stage, node=node, reason="; ".join(problems)[:500]))

    def fallback_counts(self) -> dict[str, int]:
        return dict(Counter(f.stage for f in self.fallbacks))
