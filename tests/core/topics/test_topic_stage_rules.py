"""The rules the stages follow that need no model: which nodes may split, and the shape of the prompts."""

import json
import os
import re

import pytest
from pydantic import ValidationError

from autorag_dagster.core.topics import prompts
from autorag_dagster.core.topics.buckets import (
    build_view,
    fmt_time,
    merge_turns,
    render_lines,
)
from autorag_dagster.core.topics.schemas import subject_changes_schema
from autorag_dagster.core.topics.stages import (
    FileContext,
    TopicConfig,
    candidate_views,
    worth_splitting,
)
from autorag_dagster.core.topics.tree import nodes_for
from autorag_dagster.core.types import SpeakerTranscript
from tests.support.synthetic_transcripts import make_transcript


def context(transcript: SpeakerTranscript) -> FileContext:
    return FileContext.of(transcript, TopicConfig())


def test_long_nodes_may_split_and_short_conversations_in_short_clips_too(ten_minutes):
    long_file = context(ten_minutes)
    chapters = nodes_for([(0.0, 150.9), (150.9, 250.0), (250.0, ten_minutes.duration_s)])
    # 151 s: long enough anywhere; 99 s of conversation is a small share of a 10-minute file
    assert [worth_splitting(long_file, n) for n in chapters] == [True, False, True]

    clip = make_transcript([("garden", 45.0, ["A", "B"]), ("budget", 45.0, ["B", "A"])], turn_s=10)
    whole = nodes_for([(0.0, clip.duration_s)])[0]
    assert whole.end - whole.start < TopicConfig().l2_min_s
    assert worth_splitting(context(clip), whole)

    # the same length spoken by one person has no turns to go on
    monologue = make_transcript([("harbour", 90.0, ["A"])], turn_s=10)
    assert not worth_splitting(context(monologue), nodes_for([(0.0, monologue.duration_s)])[0])


def test_short_clips_get_smaller_minimum_durations():
    config = TopicConfig()
    assert config.min_l1(3600) == 30.0 and config.min_l1(80) == 16.0 and config.min_l1(20) == config.min_floor_s
    assert config.min_l2(300) == 20.0 and config.min_l2(45) == 15.0


def test_summary_prompts_show_only_the_part_and_share_everything_but_their_tail(ten_minutes):
    view = build_view(ten_minutes, 15)
    first, second = (
        prompts.summary_messages(
            render_lines(merge_turns(view.within(a, b)), numbered=False, timed=False), speakers=view.speakers_in(a, b)
        )
        for a, b in [(0.0, 150.9), (300.3, 451.7)]
    )
    # system, the worked example as an earlier exchange, then the part
    assert [m["role"] for m in first] == ["system", "user", "assistant", "user"]
    assert first[:3] == second[:3]
    shared = os.path.commonprefix([first[-1]["content"], second[-1]["content"]])
    assert shared.endswith("Transcript (Speaker ") and len(shared) > 300
    assert "tomatoes" not in shared and "ferry" not in shared
    user = first[-1]["content"]
    assert "tomatoes" in user and "ferry" not in user  # the part only, not the whole file
    assert not re.search(r"\d\d:\d\d", user.split("Transcript (")[1])  # no times to echo
    assert json.loads(first[2]["content"])["title"] == "Library roof repairs"


def test_boundary_prompts_number_the_candidates_and_name_the_limits(ten_minutes):
    ctx = context(ten_minutes)
    found = ctx.cohesion.candidates(0.0, ten_minutes.duration_s)
    messages = prompts.boundary_messages(
        candidate_views(ctx, found),
        level=1,
        start=0.0,
        end=ten_minutes.duration_s,
        speakers=ctx.view.speakers_in(0, ten_minutes.duration_s),
        max_changes=11,
        min_len=45.0,
    )
    user = messages[-1]["content"]
    assert "the recording divides into chapters" in user
    assert "at most 11 places" in user and "45 s" in user
    assert "speakers: Speaker 1, Speaker 2, Speaker 3" in user
    for number, c in enumerate(found, 1):
        assert f"[{number}] at {fmt_time(c.time)}" in user
    # each candidate shows the words on both sides of it
    budget = next(n for n, c in enumerate(found, 1) if abs(c.time - 150.9) < 1)
    block = user.split(f"[{budget}] at")[1].split("\n[")[0]
    assert "greenhouse" in block.split("after:")[0] and "budget" in block.split("after:")[1]


def test_the_boundary_schema_admits_only_valid_candidate_numbers():
    schema = subject_changes_schema(4, 2)
    json_schema = schema.model_json_schema()
    items = json_schema["properties"]["changes"]
    assert items["items"]["enum"] == [1, 2, 3, 4] and items["maxItems"] == 2
    assert schema.model_validate_json('{"changes": [1, 4]}').changes == [1, 4]
    for bad in ('{"changes": [0]}', '{"changes": [5]}', '{"changes": [1, 2, 3]}', '{"changes": ["2"]}'):
        with pytest.raises(ValidationError):
            schema.model_validate_json(bad)
    assert subject_changes_schema(1, 1).model_json_schema()["properties"]["changes"]["items"] == {
        "const": 1,
        "type": "integer",
    }
