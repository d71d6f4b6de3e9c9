"""The rules the stages follow that need no model: which nodes may split, and the shape of the prompts."""

import os

from autorag_dagster.core.topics import prompts
from autorag_dagster.core.topics.buckets import build_view, render_lines, tokens
from autorag_dagster.core.topics.stages import FileContext, TopicConfig, worth_splitting
from autorag_dagster.core.topics.tree import nodes_for
from autorag_dagster.core.types import SpeakerTranscript
from tests.support.synthetic_transcripts import TEN_MINUTES, make_transcript


def context(transcript: SpeakerTranscript) -> FileContext:
    config = TopicConfig()
    view = build_view(transcript, config.bucket_s)
    return FileContext(
        view=view, fine=build_view(transcript, config.l2_bucket_s), vocabulary=set(tokens(view.text())),
        snap=[u.start for u in transcript.utterances], config=config,
    )


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
    assert config.min_l1(3600) == 45.0 and config.min_l1(80) == 20.0 and config.min_l1(20) == config.min_floor_s
    assert config.min_l2(300) == 20.0 and config.min_l2(45) == 15.0


def test_summary_prompts_share_everything_but_their_tail(ten_minutes):
    view = build_view(ten_minutes, 15)
    first, second = (
        prompts.summary_messages(render_lines(view.within(a, b), numbered=False), start=a, end=b,
                                 speakers=view.speakers_in(a, b))
        for a, b in [(0.0, 150.9), (300.3, 451.7)]
    )
    assert first[0] == second[0] and first[0]["role"] == "system"
    shared = os.path.commonprefix([first[1]["content"], second[1]["content"]])
    # only the coincidental first digit of the two time ranges follows the shared instructions
    assert len(shared.split("\n\nPart: ")[1]) <= 1
    assert "02:30" not in shared and "tomatoes" not in shared
    assert first[1]["content"].startswith(shared) and len(shared) > 600


def test_boundary_prompts_number_lines_and_name_the_limits(ten_minutes):
    view = build_view(ten_minutes)
    messages = prompts.boundary_messages(
        render_lines(view.lines), level=1, start=0.0, end=ten_minutes.duration_s, n_lines=len(view.lines),
        speakers=view.speakers_in(0, ten_minutes.duration_s), max_topics=12, min_len=45.0,
    )
    user = messages[-1]["content"]
    assert "divide the recording into chapters" in user
    assert f"from 1 to {len(view.lines)}" in user and "at most 12 chapters" in user and "45 s" in user
    assert "speakers: Speaker 1, Speaker 2, Speaker 3" in user
    assert user.rstrip().endswith(view.lines[-1].render(len(view.lines)))
    assert len(view.lines) == 43 and TEN_MINUTES[0][0] == "garden"
