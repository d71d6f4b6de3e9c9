"""A long recording at a small num_ctx: every prompt fits (the server's event log says none was cut),
long inputs go in windows, and the tree still covers the whole recording."""

from __future__ import annotations

import pytest

from autorag_dagster.core.topics import build_topic_tree, check_tree
from autorag_dagster.core.topics.stages import TopicConfig
from autorag_dagster.core.types import SpeakerTranscript
from autorag_dagster.ollama import PromptTooLongError
from tests.support.synthetic_transcripts import SUBJECTS, make_transcript

NUM_CTX = 2048


@pytest.fixture(scope="module")
def hour() -> SpeakerTranscript:
    """An hour: a 20-minute talk on one subject, then ten 4-minute conversations."""
    others = [s for s in SUBJECTS if s != "harbour"]
    plan = [("harbour", 1200.0, ["A"])]
    plan += [(others[i % len(others)], 240.0, [["A", "B"], ["B", "C"], ["C", "A"]][i % 3]) for i in range(10)]
    return make_transcript(plan, key="hour.wav")


def chats(server) -> list[dict]:
    return [e for e in server.events(kind="request_end") if e["endpoint"] == "chat"]


def test_an_hour_at_a_small_context_fits_every_prompt_and_covers_the_hour(server, make_client, hour):
    client = make_client(server.url, num_ctx=NUM_CTX)
    tree, stats = build_topic_tree(hour, client, config=TopicConfig(give_up_after=0))

    ends = chats(server)
    assert ends and all(e["num_ctx"] == NUM_CTX and e["truncated"] is False for e in ends)
    assert max(e["prompt_tokens"] for e in ends) <= NUM_CTX - client.max_output_tokens
    # the long talk's words alone are more than the context: one prompt could not have held them
    talk = max(tree.nodes, key=lambda n: n.end - n.start)
    words = sum(len(u.text.split()) for u in hour.utterances if talk.start <= u.start < talk.end)
    assert words > NUM_CTX
    assert stats.windows.get("level1", 0) > 1 and stats.windows.get("summary", 0) > 1
    assert check_tree(tree) == []
    assert tree.nodes[0].start == 0.0 and tree.nodes[-1].end == hour.duration_s >= 3600
    assert stats.loads == 1 and stats.reloads == 0  # one uniform num_ctx for every stage


def test_an_outline_too_long_for_the_file_summary_is_reduced_in_windows(server, make_client, hour):
    """With more of the context kept for the answer, the eleven chapters' outline does not fit either."""
    client = make_client(server.url, num_ctx=NUM_CTX, max_output_tokens=1280)
    tree, stats = build_topic_tree(hour, client, config=TopicConfig(give_up_after=0))

    ends = chats(server)
    assert max(e["prompt_tokens"] for e in ends) <= NUM_CTX - 1280 and not any(e["truncated"] for e in ends)
    assert stats.windows.get("file", 0) > 1 and stats.windows.get("summary", 0) > 1
    assert check_tree(tree) == [] and tree.title and tree.summary
    assert tree.nodes[-1].end == hour.duration_s


def test_a_context_too_small_for_the_instructions_names_stage_sizes_and_setting(server, make_client, hour):
    client = make_client(server.url, num_ctx=640, max_output_tokens=256)

    with pytest.raises(PromptTooLongError) as caught:
        build_topic_tree(hour, client)

    error = caught.value
    assert error.stage == "level1" and error.tokens > error.budget == 384
    message = str(error)
    assert "The level1 prompt" in message and f"about {error.tokens} tokens" in message
    assert "AUTORAG_NUM_CTX (now 640)" in message
    assert chats(server) == []  # nothing was sent, so nothing was cut
