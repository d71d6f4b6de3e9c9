"""The project's contract with Ollama, on the official ``ollama`` package.

Every LLM request carries the same ``options.num_ctx``, ``keep_alive``, ``think: false`` and
temperature, and a ``format`` that is the JSON schema of a pydantic model; the answer comes
back validated as that model. No prompt is sent that would not fit in ``num_ctx`` beside the
answer's room (``num_predict``): sizes are estimated conservatively (``tokens``), calibrated by
every answer's ``prompt_eval_count``, and an answer whose count shows the prompt may have been
cut is an error, never a result. Busy (503), timed-out and dropped requests are retried with
exponential backoff (tenacity); everything else becomes an ``OllamaError`` whose message says
what to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
import ollama
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from autorag_dagster.ollama.config import OllamaConfig, normalise_keep_alive
from autorag_dagster.ollama.errors import (
    LLMOutputError,
    ModelNotFoundError,
    ModelPullError,
    ModelStillLoadedError,
    OllamaBusyError,
    OllamaError,
    OllamaRequestError,
    OllamaTimeoutError,
    OllamaUnreachableError,
    PromptTooLongError,
    PromptTruncatedError,
)
from autorag_dagster.ollama.names import canonical_name
from autorag_dagster.ollama.progress import PullProgress
from autorag_dagster.ollama.tokens import TokenEstimator

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
X = TypeVar("X")
Y = TypeVar("Y")

EventHook = Callable[[str, dict], None]

_DEFAULTS = OllamaConfig()

LOAD_SEEN_S = 0.5
"""A load_duration above this means the request waited for a model load (Ollama reports a few
milliseconds of scheduling otherwise), so ``stats.loads_seen`` counts requests that met a load."""


@dataclass(frozen=True)
class Structured(Generic[T]):
    """A validated structured answer and what it cost (tokens summed over every attempt)."""

    value: T
    raw: str
    attempts: int
    prompt_tokens: int
    eval_tokens: int
    load_duration_s: float


@dataclass(frozen=True)
class RunningModel:
    """One entry of /api/ps; ``context_length`` is the per-slot num_ctx it was loaded with."""

    name: str
    size: int
    size_vram: int
    context_length: int | None
    expires_at: datetime | None


@dataclass
class ClientStats:
    """Thread-safe counters for metadata: calls, tokens, retries, concurrency and loads."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    eval_tokens: int = 0
    validation_retries: int = 0
    request_retries: int = 0
    embed_calls: int = 0
    loads_seen: int = 0
    load_seconds: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    @contextmanager
    def in_flight_request(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def snapshot(self) -> dict[str, float]:
        """The counters as a plain dict (for metadata), without the live ``in_flight``."""
        names = [f.name for f in fields(self) if f.name not in ("_lock", "in_flight")]
        with self._lock:
            return {name: getattr(self, name) for name in names}


def _validation_summary(exc: ValidationError, limit: int = 5) -> str:
    parts = [f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors()[:limit]]
    return "; ".join(parts)


class OllamaClient:
    """Synchronous Ollama client with the project's request contract (see module docstring).

    ``on_event(kind, data)``, if given, is called (from worker threads too) on ``load``,
    ``retry``, ``validation_retry``, ``warm`` and ``evict``. ``backoff_s`` scales the
    randomised exponential wait between retries (capped at 30 s). ``evict_confirm_s`` is how long
    an eviction waits for /api/ps to drop the model (Ollama unloads asynchronously).
    """

    def __init__(
        self,
        base_url: str,
        *,
        llm_model: str,
        embed_model: str,
        num_ctx: int = _DEFAULTS.num_ctx,
        keep_alive: str | int = _DEFAULTS.keep_alive,
        timeout: float = _DEFAULTS.request_timeout,
        request_retries: int = _DEFAULTS.request_retries,
        validation_retries: int = _DEFAULTS.validation_retries,
        max_concurrency: int = _DEFAULTS.max_concurrency,
        temperature: float = _DEFAULTS.llm_temperature,
        max_output_tokens: int = _DEFAULTS.llm_max_output_tokens,
        backoff_s: float = 1.0,
        evict_confirm_s: float = 30.0,
        on_event: EventHook | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.llm_model, self.embed_model = llm_model, embed_model
        self.num_ctx, self.keep_alive, self.temperature = num_ctx, normalise_keep_alive(keep_alive), temperature
        self.max_output_tokens = max_output_tokens
        self.timeout, self.request_retries = timeout, request_retries
        self.validation_retries, self.max_concurrency = validation_retries, max_concurrency
        self.backoff_s = backoff_s
        self.evict_confirm_s = evict_confirm_s
        self.on_event = on_event
        self.stats = ClientStats()
        self.tokens = TokenEstimator()
        self._client = ollama.Client(
            host=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max(100, 2 * max_concurrency)),
        )

    @classmethod
    def from_config(cls, config: OllamaConfig, **overrides: Any) -> OllamaClient:
        """A client that follows ``config``; ``overrides`` replace constructor arguments (e.g. a short ``timeout``)."""
        kwargs: dict[str, Any] = dict(
            llm_model=config.llm_model,
            embed_model=config.embed_model,
            num_ctx=config.num_ctx,
            keep_alive=config.keep_alive,
            timeout=config.request_timeout,
            request_retries=config.request_retries,
            validation_retries=config.validation_retries,
            max_concurrency=config.max_concurrency,
            temperature=config.llm_temperature,
            max_output_tokens=config.llm_max_output_tokens,
        )
        return cls(config.ollama_base_url, **{**kwargs, **overrides})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport: error translation and retries -----------------------------------------

    def _emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def _translate(self, exc: Exception, endpoint: str, model: str | None) -> OllamaError:
        """The error a person can act on; only the last of a retried series reaches them."""
        attempts = self.request_retries + 1
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404 and model:
                return ModelNotFoundError(model, self.base_url)
            if exc.status_code == 503:
                return OllamaBusyError(self.base_url, exc.error, attempts)
            return OllamaRequestError(self.base_url, endpoint, exc.status_code, exc.error)
        if isinstance(exc, (ConnectionError, httpx.ConnectError)):
            return OllamaUnreachableError(self.base_url)
        if isinstance(exc, httpx.TimeoutException):
            return OllamaTimeoutError(self.base_url, endpoint, self.timeout, attempts)
        return OllamaUnreachableError(self.base_url, dropped=True, attempts=attempts)

    def _once(self, endpoint: str, call: Callable[[], Y], model: str | None) -> Y:
        try:
            return call()
        except (ollama.ResponseError, ConnectionError, httpx.TransportError) as exc:
            raise self._translate(exc, endpoint, model) from None

    def _before_retry(self, state: Any) -> None:
        error = type(state.outcome.exception()).__name__
        wait_s = state.next_action.sleep if state.next_action else 0.0
        self.stats.add(request_retries=1)
        log.warning("Ollama request failed (%s); retry %d in %.1f s", error, state.attempt_number, wait_s)
        self._emit("retry", error=error, attempt=state.attempt_number, wait_s=wait_s)

    def _call(self, endpoint: str, call: Callable[[], Y], *, model: str | None = None) -> Y:
        """One request with busy/timeout/dropped retries; the last error is raised as is."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, OllamaError) and e.retryable),
            stop=stop_after_attempt(self.request_retries + 1),
            wait=wait_random_exponential(multiplier=self.backoff_s, max=30),
            before_sleep=self._before_retry,
            reraise=True,
        )
        return retrying(self._once, endpoint, call, model)

    # --- LLM ------------------------------------------------------------------------------

    def _options(self, num_ctx: int | None) -> dict[str, Any]:
        # num_predict is a sampling option: unlike num_ctx it never makes Ollama reload the model.
        return {
            "num_ctx": num_ctx or self.num_ctx,
            "temperature": self.temperature,
            "num_predict": self.max_output_tokens,
        }

    def prompt_budget(self, num_ctx: int | None = None) -> int:
        """Tokens a prompt may hold: the context less the answer's room (``num_predict``)."""
        return (num_ctx or self.num_ctx) - self.max_output_tokens

    def estimate_tokens(self, messages: Sequence[dict], model: str | None = None) -> int:
        """A conservative size of ``messages`` in ``model``'s tokens (see ``tokens``)."""
        return self.tokens.estimate(model or self.llm_model, messages)

    def fits(self, messages: Sequence[dict], num_ctx: int | None = None, model: str | None = None) -> bool:
        return self.estimate_tokens(messages, model) <= self.prompt_budget(num_ctx)

    def _check_prompt(self, model: str, messages: list[dict], response: ollama.ChatResponse, num_ctx: int) -> None:
        """Calibrate the estimate on the server's count; a count that fills the prompt's whole room
        means the server may have cut the prompt (as Ollama does silently), so the answer is refused."""
        evaluated = response.prompt_eval_count
        if evaluated is None:
            return
        estimated = self.estimate_tokens(messages, model)
        if self.tokens.observe(model, messages, evaluated):
            log.warning(
                "%s counted %d prompt tokens where %d were estimated; the estimate now uses %.2f chars per token",
                model,
                evaluated,
                estimated,
                self.tokens.chars_per_token(model),
            )
        if evaluated >= self.prompt_budget(num_ctx):
            raise PromptTruncatedError(model, evaluated, estimated, num_ctx, self.max_output_tokens)

    def _chat(self, model: str, messages: list[dict], schema: dict, num_ctx: int | None) -> ollama.ChatResponse:
        with self.stats.in_flight_request():
            response = self._call(
                "/api/chat",
                lambda: self._client.chat(
                    model,
                    messages,
                    format=schema,
                    options=self._options(num_ctx),
                    keep_alive=self.keep_alive,
                    think=False,
                ),
                model=model,
            )
        load_s = (response.load_duration or 0) / 1e9
        self.stats.add(
            llm_calls=1,
            prompt_tokens=response.prompt_eval_count or 0,
            eval_tokens=response.eval_count or 0,
        )
        if load_s > LOAD_SEEN_S:
            self.stats.add(loads_seen=1, load_seconds=load_s)
            self._emit("load", model=model, load_duration_s=load_s)
        return response

    def chat_structured(
        self,
        messages: list[dict],
        schema: type[T],
        *,
        num_ctx: int | None = None,
        model: str | None = None,
    ) -> Structured[T]:
        """Ask for an answer shaped as ``schema``; invalid answers are re-asked, then raised.

        A retry repeats the conversation plus the invalid answer and the validation problem, so
        the prompt prefix (and the server's prefix cache) stays the same. ``num_ctx`` overrides
        the run's context: only for deliberate cases, since a different value reloads the model.
        Raises ``LLMOutputError`` (with every raw answer) after ``validation_retries`` re-asks (or
        earlier, when a re-ask would not fit in the context), ``PromptTooLongError`` for ``messages``
        that do not fit (nothing is sent) and ``PromptTruncatedError`` for an answer whose prompt
        the server may have cut.
        """
        model = model or self.llm_model
        num_ctx = num_ctx or self.num_ctx
        json_schema = schema.model_json_schema()
        conversation = list(messages)
        raws: list[str] = []
        problems: list[str] = []
        prompt_tokens = eval_tokens = 0
        load_s = 0.0
        for attempt in range(1, self.validation_retries + 2):
            needed = self.estimate_tokens(conversation, model)
            if needed > self.prompt_budget(num_ctx):
                if attempt == 1:
                    raise PromptTooLongError(model, needed, num_ctx, self.max_output_tokens)
                problems.append(f"a re-ask of about {needed} tokens would not fit in num_ctx {num_ctx}")
                break
            response = self._chat(model, conversation, json_schema, num_ctx)
            self._check_prompt(model, conversation, response, num_ctx)
            raw = response.message.content or ""
            prompt_tokens += response.prompt_eval_count or 0
            eval_tokens += response.eval_count or 0
            load_s += (response.load_duration or 0) / 1e9
            try:
                value = schema.model_validate_json(raw)
            except ValidationError as exc:
                raws.append(raw)
                problems.append(_validation_summary(exc))
                if attempt <= self.validation_retries:
                    self.stats.add(validation_retries=1)
                    self._emit("validation_retry", model=model, schema=schema.__name__, error=problems[-1])
                    conversation = [
                        *messages,
                        {"role": "assistant", "content": raw},
                        {
                            "role": "user",
                            "content": (
                                f"That answer does not match the required JSON schema ({problems[-1]})."
                                " Reply again with only a JSON object that matches the schema."
                            ),
                        },
                    ]
                continue
            return Structured(value, raw, attempt, prompt_tokens, eval_tokens, load_s)
        raise LLMOutputError(model, schema.__name__, raws, problems)

    def fan_out(self, fn: Callable[[X], Y], items: Sequence[X]) -> list[Y]:
        """Apply ``fn`` to every item with up to ``max_concurrency`` calls in flight; order kept.

        ``fn`` should handle its own per-item fallback (catch ``LLMOutputError``). If an
        exception escapes ``fn``, items not yet started are cancelled, the running ones finish,
        and the first failure in item order is raised.
        """
        items = list(items)
        if not items:
            return []
        with ThreadPoolExecutor(min(self.max_concurrency, len(items)), thread_name_prefix="ollama") as pool:
            futures = [pool.submit(fn, item) for item in items]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]

    # --- residency ------------------------------------------------------------------------

    def warm(self, model: str | None = None, num_ctx: int | None = None) -> float:
        """Load ``model`` (a chat with no messages) with the run's num_ctx; returns seconds taken."""
        model = model or self.llm_model
        started = time.perf_counter()
        with self.stats.in_flight_request():
            self._call(
                "/api/chat",
                lambda: self._client.chat(
                    model, [], options=self._options(num_ctx), keep_alive=self.keep_alive, think=False
                ),
                model=model,
            )
        seconds = time.perf_counter() - started
        self._emit("warm", model=model, num_ctx=num_ctx or self.num_ctx, seconds=seconds)
        return seconds

    def evict(self, model: str | None = None, *, confirm_timeout: float | None = None) -> None:
        """Unload ``model`` (keep_alive 0, as ``ollama stop`` does) and wait until /api/ps drops it.

        Ollama answers the unload at once and stops the runner afterwards, so /api/ps may list the
        model for a moment: it is polled (20 ms, doubling up to 0.5 s) for ``confirm_timeout``
        seconds (default ``evict_confirm_s``), then ``ModelStillLoadedError``. A model that is not
        pulled cannot be resident, so a 404 here is not an error.
        """
        model = model or self.llm_model
        confirm_timeout = self.evict_confirm_s if confirm_timeout is None else confirm_timeout
        try:
            self._call("/api/generate", lambda: self._client.generate(model, "", keep_alive=0), model=model)
        except ModelNotFoundError:
            return
        deadline = time.monotonic() + confirm_timeout
        pause = 0.02
        while canonical_name(model) in {canonical_name(m.name) for m in self.ps()}:
            if time.monotonic() > deadline:
                raise ModelStillLoadedError(model, self.base_url, confirm_timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        self._emit("evict", model=model)

    def evict_all(self, *, keep: Iterable[str] = (), confirm_timeout: float | None = None) -> list[str]:
        """Evict every resident model except those in ``keep``; returns the evicted names."""
        kept = {canonical_name(m) for m in keep}
        evicted = [m.name for m in self.ps() if canonical_name(m.name) not in kept]
        for name in evicted:
            self.evict(name, confirm_timeout=confirm_timeout)
        return evicted

    def ps(self) -> list[RunningModel]:
        response = self._call("/api/ps", self._client.ps)
        return [
            RunningModel(
                name=m.name or m.model or "",
                size=int(m.size or 0),
                size_vram=int(m.size_vram or 0),
                context_length=m.context_length,
                expires_at=m.expires_at,
            )
            for m in response.models
        ]

    # --- models on disk -------------------------------------------------------------------

    def pulled_models(self) -> list[str]:
        return [m.model or "" for m in self._call("/api/tags", self._client.list).models]

    def model_sizes(self) -> dict[str, int]:
        """Bytes of every pulled model's weights (/api/tags ``size``), by canonical name."""
        models = self._call("/api/tags", self._client.list).models
        return {canonical_name(m.model or ""): int(m.size or 0) for m in models}

    def missing_models(self, required: Iterable[str]) -> list[str]:
        """The required models /api/tags does not list (``x`` and ``x:latest`` are equal)."""
        pulled = {canonical_name(name) for name in self.pulled_models()}
        missing: list[str] = []
        for name in required:
            if canonical_name(name) not in pulled and name not in missing:
                missing.append(name)
        return missing

    def pull(self, model: str, progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull ``model``, passing every streamed status to ``progress`` (logged when there is none)."""

        def report(update: PullProgress) -> None:
            if progress is not None:
                progress(update)
            elif not update.total:
                log.info("%s: %s", model, update.status)

        def stream() -> None:
            try:
                for line in self._client.pull(model, stream=True):
                    report(PullProgress(line.status or "", line.digest, line.total, line.completed))
            except ollama.ResponseError as exc:
                if exc.status_code in (-1, 404):
                    raise ModelPullError(model, self.base_url, exc.error) from None
                raise

        self._call("/api/pull", stream, model=model)

    def show(self, model: str) -> dict:
        """/api/show as a dict with Ollama's keys (``details``, ``model_info``, ``capabilities``)."""
        response = self._call("/api/show", lambda: self._client.show(model), model=model)
        return response.model_dump(mode="json", by_alias=True, exclude_none=True)

    def embedding_dim(self, model: str | None = None) -> int | None:
        """The vector size a model produces, from ``<arch>.embedding_length`` in /api/show."""
        info = self.show(model or self.embed_model).get("model_info") or {}
        return next((int(v) for k, v in info.items() if k.endswith(".embedding_length")), None)

    # --- embeddings -----------------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, model: str | None = None, batch_size: int = 64) -> list[list[float]]:
        """Embed ``texts`` in batches through /api/embed; one vector per text, in order."""
        model = model or self.embed_model
        vectors: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            response = self._call(
                "/api/embed",
                lambda batch=batch: self._client.embed(model, batch, keep_alive=self.keep_alive),
                model=model,
            )
            self.stats.add(embed_calls=1)
            vectors.extend([list(map(float, v)) for v in response.embeddings])
        return vectors
