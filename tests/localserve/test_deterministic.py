"""The deterministic backend: schema-valid answers derived from the prompt, and word-sensitive unit embeddings."""

from __future__ import annotations

import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Literal

import jsonschema
import numpy as np
import pytest
from pydantic import BaseModel, Field

from tests.support.localserve_http import chat_body
from tests.support.models import EMBED, LLM


class Kind(StrEnum):
    monologue = "monologue"
    dialogue = "dialogue"


class Span(BaseModel):
    start_s: float = Field(ge=0, le=600)
    end_s: float = Field(gt=0, le=600)


class Topic(BaseModel):
    title: str = Field(min_length=3, max_length=60)
    summary: str
    span: Span
    speakers: list[Literal["Speaker 1", "Speaker 2"]] = Field(min_length=1, max_length=2)
    kind: Kind
    children: list[Topic] = Field(default_factory=list, max_length=3)
    confidence: float | None = None
    tags: dict[str, int] = Field(default_factory=dict)


class Outline(BaseModel):
    """A nested model with $defs, $ref, anyOf, enum, bounds, recursion and dicts."""

    reason: str
    subdivide: bool
    topics: list[Topic] = Field(min_length=2, max_length=4)
    created: datetime
    level: int = Field(ge=1, le=2)


SCHEMA = Outline.model_json_schema()


def ask(http, text: str, fmt=SCHEMA, model: str = LLM) -> str:
    response = http.post("/api/chat", json={**chat_body(model, text), "format": fmt})
    assert response.status_code == 200, response.text
    return response.json()["message"]["content"]


def test_schema_answers_validate_and_depend_on_the_prompt(http):
    prompts = [
        "00:00-00:30 Speaker 1: welcome to the show about rivers",
        "00:30-01:10 Speaker 2: glaciers carve valleys over 120 years",
        "01:10-02:00 Speaker 1: bridges, tolls and 45 ferries",
    ]
    answers = [ask(http, prompt) for prompt in prompts]
    for answer in answers:
        jsonschema.validate(json.loads(answer), SCHEMA)
        Outline.model_validate_json(answer)
    assert len(set(answers)) == 3
    assert ask(http, prompts[0]) == answers[0]  # same prompt, same answer
    words = set(" ".join(prompts[1:2]).lower().replace(":", " ").split())
    outline = Outline.model_validate_json(answers[1])
    assert words & set(outline.reason.lower().rstrip(".").split())  # strings come from the prompt's words


def test_numbers_in_the_prompt_feed_numeric_fields(http):
    schema = {
        "type": "object",
        "title": "Boundaries",
        "properties": {
            "cuts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 100, "maximum": 999},
                "minItems": 5,
                "maxItems": 5,
            }
        },
        "required": ["cuts"],
    }
    cuts = json.loads(ask(http, "Split at 120 then 345 then 780 seconds, not at 7 or 5000", schema))["cuts"]
    assert len(cuts) == 5 and all(100 <= c <= 999 for c in cuts)
    assert set(cuts) & {120, 345, 780}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "enum": ["yes", "no"]},
        {
            "type": "object",
            "properties": {
                "x": {"const": 3},
                "y": {"type": ["null", "number"], "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            },
            "required": ["x", "y"],
        },
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False, "minItems": 2},
        {
            "type": "object",
            "properties": {"n": {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 40}},
            "required": ["n"],
            "additionalProperties": False,
        },
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string", "format": "uuid"}}, "required": ["b"]},
            ]
        },
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 3}, "uniqueItems": True, "minItems": 3},
    ],
)
def test_other_schema_keywords_are_respected(http, schema):
    for text in ("first prompt", "second prompt about 9 things"):
        jsonschema.validate(json.loads(ask(http, text, schema)), schema, format_checker=jsonschema.FormatChecker())


def test_format_json_gives_an_object_and_no_format_gives_text(http):
    assert isinstance(json.loads(ask(http, "List two fruits", "json")), dict)
    text = ask(http, "Describe mountains and rivers", None)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert set(text.lower().rstrip(".").split()) <= {"describe", "mountains", "and", "rivers"}


def embed(http, inputs, **extra) -> dict:
    response = http.post("/api/embed", json={"model": EMBED, "input": inputs, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def cosine(a, b) -> float:
    return float(np.dot(a, b))


def test_embeddings_are_unit_vectors_of_the_models_dimension(http):
    answer = embed(http, ["the cat sat on the mat", "a cat on a mat", "quarterly revenue grew strongly", ""])
    vectors = answer["embeddings"]
    assert [len(v) for v in vectors] == [768] * 4
    assert all(math.isclose(np.linalg.norm(v), 1.0, abs_tol=1e-5) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert embed(http, "the cat sat on the mat")["embeddings"][0] == vectors[0]
    assert answer["prompt_eval_count"] == 6 + 5 + 4 and isinstance(answer["total_duration"], int)


def test_embed_truncates_unless_told_not_to(http):
    long_text = " ".join(f"word{i}" for i in range(20))
    head = " ".join(f"word{i}" for i in range(8))
    options = {"num_ctx": 8}
    truncated = embed(http, long_text, options=options)
    assert truncated["embeddings"] == embed(http, head, options=options)["embeddings"]
    assert truncated["prompt_eval_count"] == 8
    refused = http.post("/api/embed", json={"model": EMBED, "input": long_text, "options": options, "truncate": False})
    assert (refused.status_code, refused.json()) == (400, {"error": "the input length exceeds the context length"})


def test_embed_dimensions_and_empty_input(http):
    short = embed(http, "some words here", dimensions=64)["embeddings"][0]
    assert len(short) == 64 and math.isclose(np.linalg.norm(short), 1.0, abs_tol=1e-5)
    assert embed(http, [])["embeddings"] == []
