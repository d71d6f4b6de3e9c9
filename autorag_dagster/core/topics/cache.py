"""A content-addressed cache of LLM answers: one JSON file per request, named by its hash.

The key covers everything that decides the answer: the model's digest (a re-pulled or
different model misses), the options (num_ctx, num_predict, temperature, think, the number of
validation re-asks and the prompt version: ``StageRunner.cache_key``), the messages and the JSON
schema. Files are written to a temporary name and renamed into place, so a crash never leaves a
half-written answer behind. An entry is ``{"raw": <answer>}``; answers that never matched their
schema are not stored (an old ``{"error": ...}`` entry reads as a miss), so a failure is asked
again rather than replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from autorag_dagster.core import atomic


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class AnswerCache:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @staticmethod
    def key(*, model_digest: str, options: dict, messages: list[dict], schema: dict) -> str:
        payload = {"model": model_digest, "options": options, "messages": messages, "schema": schema}
        return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored answer, or None when absent or unreadable (a corrupt file is a miss)."""
        try:
            value = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict) -> None:
        atomic.write_text(self.path(key), _canonical(value))
