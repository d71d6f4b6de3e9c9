"""How many tokens a prompt holds, known before the request is sent.

Ollama has no tokenize endpoint and cuts a prompt longer than ``num_ctx`` without an error
(the oldest messages, then the prompt's head), so the client estimates every prompt's size
itself and keeps it within ``num_ctx`` minus the answer's room (``num_predict``). The estimate
is conservative: every digit, punctuation mark and non-ASCII letter counts as a token (tokenizers split numbers such
as the transcript's ``12:05-12:30`` into single digits), the letters and spaces are divided by a
chars-per-token figure lower than English words have in the tokenizers in use (about 4), and the
chat template adds tokens per message. Each answer's ``prompt_eval_count`` calibrates it per model:
a prompt that counted more tokens than estimated lowers that model's chars-per-token figure to what
would have covered it, so the estimate only ever gets safer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

CHARS_PER_TOKEN = 3.0
"""The starting figure for letters and spaces: fewer than any tokenizer in use gives on words."""

TOKENS_PER_MESSAGE = 8
"""The chat template's tokens around each message (role markers, separators)."""

TOKENS_PER_PROMPT = 16
"""The template's tokens around the whole conversation (the opening and the answer's header)."""


def prompt_chars(messages: Sequence[Mapping[str, str]]) -> tuple[int, int]:
    """(ASCII letters and spaces, every other character) of the messages' contents: a digit, a mark or a
    letter outside ASCII (a CJK character is often a token of its own) counts as a token."""
    letters = symbols = 0
    for m in messages:
        text = m.get("content") or ""
        plain = sum(1 for c in text if c.isascii() and (c.isalpha() or c.isspace()))
        letters, symbols = letters + plain, symbols + len(text) - plain
    return letters, symbols


class TokenEstimator:
    """Conservative prompt sizes per model, calibrated by the tokens the server reports (thread-safe)."""

    def __init__(self, chars_per_token: float = CHARS_PER_TOKEN):
        if chars_per_token <= 0:
            raise ValueError(f"chars_per_token must be positive, got {chars_per_token}")
        self.start = chars_per_token
        self._ratios: dict[str, float] = {}
        self._lock = threading.Lock()

    def chars_per_token(self, model: str) -> float:
        with self._lock:
            return self._ratios.get(model, self.start)

    @staticmethod
    def overhead(messages: Sequence[Mapping[str, str]]) -> int:
        return TOKENS_PER_PROMPT + TOKENS_PER_MESSAGE * len(messages)

    def estimate(self, model: str, messages: Sequence[Mapping[str, str]]) -> int:
        """At least the tokens the model's template and tokenizer make of ``messages`` (an upper bound)."""
        letters, symbols = prompt_chars(messages)
        return self.overhead(messages) + symbols + math.ceil(letters / self.chars_per_token(model))

    def observe(self, model: str, messages: Sequence[Mapping[str, str]], prompt_eval_count: int) -> bool:
        """Calibrate on the server's count for ``messages``; True when the estimate was too low (and is now raised)."""
        if prompt_eval_count <= self.estimate(model, messages):
            return False
        letters, symbols = prompt_chars(messages)
        word_tokens = prompt_eval_count - self.overhead(messages) - symbols
        if letters == 0 or word_tokens <= 0:
            return False
        covering = 0.95 * letters / word_tokens  # a margin below the ratio that would just have covered it
        with self._lock:
            self._ratios[model] = min(self._ratios.get(model, self.start), covering)
        return True
