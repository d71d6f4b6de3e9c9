"""The backend seam: a Backend loads a model into a Runner; the scheduler owns runners' lifetimes.

Runners are called from worker threads (at most ``parallel`` at once per runner); a backend
whose library is not thread-safe serialises calls itself. A runner that cannot serve a request
kind for its model raises NotImplementedError with Ollama's text (``"X" does not support ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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


def fit_context(messages: Sequence[Mapping[str, str]], num_ctx: int) -> tuple[list[Mapping[str, str]], int]:
    """Drop the oldest non-system messages until the prompt fits, as Ollama does silently.

    Returns the kept messages and their token count (at most ``num_ctx``; the last message is
    always kept and cut at the context length).
    """
    kept = list(messages)
    tokens = sum(count_tokens(m.get("content", "")) for m in kept)
    while tokens > num_ctx:
        droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
        if not droppable:
            break
        tokens -= count_tokens(kept.pop(droppable[0]).get("content", ""))
    return kept, min(tokens, num_ctx)
