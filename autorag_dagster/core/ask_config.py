"""The knobs of ``autorag ask`` (kept apart from ``ask`` so that reading settings loads no store)."""

from __future__ import annotations

from pydantic import BaseModel, Field

MIN_SIMILARITY = 0.155
"""Below this cosine similarity no row answers the question (all-minilm; see ``core/ask.py``)."""


class AskConfig(BaseModel):
    """The knobs of ``autorag ask``."""

    ask_generate: bool | None = Field(
        None,
        description="Generated answers (true) or extractive ones (false); unset: generated with a model of 3B parameters or more.",
    )
    ask_min_similarity: float = Field(
        MIN_SIMILARITY,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a retrieved span needs to answer; below it ask says nothing answers.",
    )
