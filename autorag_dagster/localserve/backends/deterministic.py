"""A fast backend whose answers are pure functions of the request.

- A JSON-schema ``format`` gets a valid instance built from the prompt's words and numbers and
  a hash of the messages (so different prompts give different answers).
- ``format: "json"`` gets a JSON object; no format gets a sentence made of the prompt's words.
- Embeddings are hashed bags of words: each word has a fixed random direction, a text is the
  normalised sum of its words' directions, so texts sharing words are close.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from .base import Completion, CompletionRequest, Embeddings, InputTooLong, LoadSpec, count_tokens, fit_context
from .schema_instance import SchemaInstance

_WORD = re.compile(r"[^\W\d_][\w'-]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class DeterministicBackend:
    def load(self, spec: LoadSpec) -> DeterministicRunner:
        return DeterministicRunner(spec)


class DeterministicRunner:
    """Holds no weights: /api/ps shows the sizes computed from the model's shape, as simulated VRAM
    (so tests of GPU tenancy see a card being used), and says they are computed."""

    on_gpu = True

    def __init__(self, spec: LoadSpec):
        self.model = spec.model
        self.num_ctx = min(spec.num_ctx, spec.model.context_length)

    def memory(self) -> None:
        return None

    def complete(self, request: CompletionRequest) -> Completion:
        fitted = fit_context(request.messages, self.num_ctx)
        messages, prompt_tokens = fitted.messages, fitted.tokens
        cut = {"prompt_tokens": fitted.full_tokens, "truncated": fitted.truncated}
        seed = _digest(self.model.name, json.dumps([dict(m) for m in messages], sort_keys=True), request.format)
        rng = random.Random(seed)
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        focus = last_user or " ".join(m.get("content", "") for m in messages)
        words = _WORD.findall(focus) or _WORD.findall(" ".join(m.get("content", "") for m in messages))
        numbers = [float(n) for n in _NUMBER.findall(focus)]

        thinking = ""
        if request.think:
            thinking = f"The request mentions {' '.join(words[:6]) or 'nothing in particular'}; answer it."
        if isinstance(request.format, dict):
            content = json.dumps(SchemaInstance(request.format, rng, words, numbers).build(), ensure_ascii=False)
        elif request.format == "json":
            content = json.dumps(
                {"response": _sentence(rng, words), "value": rng.choice(numbers or [rng.randint(0, 99)])}
            )
        else:
            return self._text_completion(_sentence(rng, words), thinking, prompt_tokens, request.options, cut)
        return Completion(content, prompt_tokens, count_tokens(content) + count_tokens(thinking), thinking, **cut)

    def _text_completion(
        self, text: str, thinking: str, prompt_tokens: int, options: Mapping, cut: Mapping
    ) -> Completion:
        limit = options.get("num_predict", -1)
        tokens = text.split()
        if 0 < limit < len(tokens):
            return Completion(" ".join(tokens[:limit]), prompt_tokens, limit, thinking, "length", **cut)
        return Completion(text, prompt_tokens, len(tokens) + count_tokens(thinking), thinking, **cut)

    def embed(self, texts: Sequence[str], truncate: bool) -> Embeddings:
        limit = min(self.num_ctx, self.model.context_length)
        vectors, total = [], 0
        for text in texts:
            tokens = text.split()
            if len(tokens) > limit:
                if not truncate:
                    raise InputTooLong(InputTooLong.message)
                tokens = tokens[:limit]
            total += len(tokens)
            vectors.append(_embedding(" ".join(tokens), self.model.embedding_length))
        return Embeddings(vectors, total)

    def close(self) -> None:
        pass


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()[:8], "big")


def _sentence(rng: random.Random, words: Sequence[str]) -> str:
    if not words:
        return "Nothing to answer."
    return " ".join(rng.choices(words, k=rng.randint(6, 14))).capitalize() + "."


@lru_cache(maxsize=65536)
def _word_direction(word: str, dim: int) -> np.ndarray:
    return np.random.default_rng(_digest("word", word)).standard_normal(dim)


def _embedding(text: str, dim: int) -> list[float]:
    words = [w.lower() for w in _WORD.findall(text)] + _NUMBER.findall(text)
    vector = sum((_word_direction(w, dim) for w in words), start=np.zeros(dim))
    if not words:
        vector = _word_direction(f"\0{text}", dim)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()
