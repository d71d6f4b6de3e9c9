"""The answers the topic stages ask for: pydantic models whose JSON schema is sent as Ollama's ``format``.

Boundaries are chosen among numbered candidates computed without a model (``segment``): the
schema is built per request so that its ``enum`` admits only the valid candidate numbers and
its ``maxItems`` the most topics allowed. Ollama's ``format`` and llama.cpp's grammars enforce
both while decoding, so even a tiny model cannot name a boundary that does not exist.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, create_model


class TopicStart(BaseModel):
    first_line: int = Field(description="Number of the transcript line where this topic begins.")
    gist: str = Field(max_length=120, description="A few words, taken from the transcript, naming the topic.")


class TopicStarts(BaseModel):
    topics: list[TopicStart] = Field(min_length=1, description="The topics in time order.")


@lru_cache(maxsize=512)
def topic_starts_schema(n_lines: int, max_topics: int) -> type[TopicStarts]:
    """``TopicStarts`` with the line numbers bounded to ``1..n_lines`` and at most ``max_topics`` items."""
    start = create_model(
        "TopicStart",
        __base__=TopicStart,
        first_line=(int, Field(ge=1, le=n_lines, description=TopicStart.model_fields["first_line"].description)),
    )
    return create_model(
        "TopicStarts",
        __base__=TopicStarts,
        topics=(
            list[start],
            Field(
                min_length=1, max_length=max(1, max_topics), description=TopicStarts.model_fields["topics"].description
            ),
        ),
    )


class SubjectChanges(BaseModel):
    changes: list[int] = Field(description="Numbers of the candidates where a new subject begins, in increasing order.")


class FreeSubjectChanges(SubjectChanges):
    other_changes: list[float] = Field(
        default_factory=list,
        description="Seconds from the start of the recording where a new subject begins that no numbered place marks.",
    )


MAX_FREE_CHANGES = 2
"""Boundaries a trusted model may propose outside the candidates (snapped to utterance starts)."""


@lru_cache(maxsize=512)
def subject_changes_schema(
    n_candidates: int, max_changes: int, free_within: tuple[float, float] | None = None
) -> type[SubjectChanges]:
    """``SubjectChanges`` whose items are one of ``1..n_candidates`` (an enum), at most ``max_changes`` of them.

    With ``free_within`` (a model trusted to place boundaries itself), ``other_changes`` admits up to
    ``MAX_FREE_CHANGES`` times inside that span; without it, the schema has no such field."""
    number = Literal[tuple(range(1, max(n_candidates, 1) + 1))]  # the enum of the valid candidate numbers
    changes = (
        list[number],
        Field(
            max_length=max(0, min(max_changes, n_candidates)),
            description=SubjectChanges.model_fields["changes"].description,
        ),
    )
    if free_within is None:
        return create_model("SubjectChanges", __base__=SubjectChanges, changes=changes)
    lo, hi = free_within
    other = (
        list[float],
        Field(
            default_factory=list,
            max_length=MAX_FREE_CHANGES,
            description=FreeSubjectChanges.model_fields["other_changes"].description,
            json_schema_extra={"items": {"type": "number", "minimum": round(lo, 1), "maximum": round(hi, 1)}},
        ),
    )
    return create_model("SubjectChanges", __base__=FreeSubjectChanges, changes=changes, other_changes=other)


# The reason comes first: writing it before the boolean makes the boolean better.
class SplitDecision(BaseModel):
    reason: str = Field(
        max_length=400, description="One sentence naming the subjects or exchanges this section contains."
    )
    subdivide: bool = Field(description="True when the section holds two or more distinct sub-topics.")


# The summary comes first so the title can condense it.
class NodeSummary(BaseModel):
    summary: str = Field(
        min_length=1, max_length=600, description="One or two sentences; speakers named by their labels."
    )
    title: str = Field(min_length=1, max_length=100, description="Three to eight words in sentence case.")


class FileSummary(BaseModel):
    summary: str = Field(min_length=1, max_length=900, description="Two to four sentences about the whole recording.")
    title: str = Field(min_length=1, max_length=100, description="Three to ten words in sentence case.")
