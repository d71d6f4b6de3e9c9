"""The backend seam: a Backend loads a model into a Runner; the scheduler owns runners' lifetimes.

Runners are called from worker threads (at most ``parallel`` at once per runner); a backend
whose library is not thread-safe serialises calls itself. A runner that cannot serve a request
kind for its model raises NotImplementedError with Ollama's text (``"X" does not support ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..catalogue import ModelSpec
from ..memory import Memory
from ..options import RunnerOptions


class InputTooLong(Exception):
    """An embedding input longer than the context with ``truncate: false``."""

    message = "the input length exceeds the context length"


@dataclass(frozen=True)
class LoadSpec:
    model: ModelSpec
    options: RunnerOptions  # num_ctx already clamped to the model's trained context
    parallel: int
    prompt_cache: bool = True  # a slot reuses the prefix it already evaluated (Ollama's prompt cache)
    flash_attention: bool = True  # llama.cpp's fused attention: prompts evaluated faster

    @property
    def num_ctx(self) -> int:
        return self.options.num_ctx


@dataclass(frozen=True)
class CompletionRequest:
    messages: Sequence[Mapping[str, str]]  # {"role", "content"}
    format: str | dict[str, Any] | None = None  # None, "json" or a JSON schema
    think: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # sampling options (temperature, seed, ...)


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_eval_count: int
    eval_count: int
    thinking: str = ""
    done_reason: str = "stop"  # or "length"
    prompt_eval_duration: float | None = None  # seconds, when the backend measures them
    eval_duration: float | None = None
    prompt_tokens: int | None = None  # the prompt's tokens before any cut (None: the backend does not know)
    truncated: bool = False  # messages or the prompt's head were dropped to fit the context

    @property
    def full_prompt_tokens(self) -> int:
        return self.prompt_eval_count if self.prompt_tokens is None else self.prompt_tokens


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # L2-normalised
    prompt_eval_count: int


class Runner(Protocol):
    on_gpu: bool  # whether /api/ps counts the runner's memory as VRAM

    def memory(self) -> Memory | None:
        """What the runner holds (measured or reported by its library); None for a simulated model."""
        ...

    def complete(self, request: CompletionRequest) -> Completion: ...

    def embed(self, texts: Sequence[str], truncate: bool) -> Embeddings: ...

    def close(self) -> None: ...


class Backend(Protocol):
    def load(self, spec: LoadSpec) -> Runner: ...


def count_tokens(text: str) -> int:
    """Approximate tokens: whitespace-separated words."""
    return len(text.split())


class Fitted(NamedTuple):
    messages: list[Mapping[str, str]]  # those kept
    tokens: int  # what is evaluated: at most the context
    full_tokens: int  # the whole prompt's, before any cut

    @property
    def truncated(self) -> bool:
        return self.tokens < self.full_tokens


def fit_context(messages: Sequence[Mapping[str, str]], num_ctx: int) -> Fitted:
    """Drop the oldest non-system messages until the prompt fits, as Ollama does silently.

    Returns the kept messages, their token count (at most ``num_ctx``; the last message is
    always kept and cut at the context length) and the whole prompt's count.
    """
    kept = list(messages)
    tokens = full = sum(count_tokens(m.get("content", "")) for m in kept)
    while tokens > num_ctx:
        droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
        if not droppable:
            break
        tokens -= count_tokens(kept.pop(droppable[0]).get("content", ""))
    return Fitted(kept, min(tokens, num_ctx), full)
