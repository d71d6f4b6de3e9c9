"""The topic stages against the local Ollama-compatible server over real HTTP, read through its event log."""

from __future__ import annotations

import json

import pytest

from autorag_dagster.core.topics import build_topic_tree, check_tree
from autorag_dagster.core.topics.buckets import build_view
from autorag_dagster.core.types import SpeakerTranscript
from autorag_dagster.localserve import max_in_flight
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama import ModelNotFoundError, OllamaTimeoutError
from tests.support.models import LLM
from tests.support.synthetic_transcripts import make_transcript

CHAPTERS = "divide the recording into chapters"
SECTIONS = "divide the section into sub-sections"


def topics(*first_lines: int) -> str:
    return json.dumps({"topics": [{"first_line": n, "gist": f"part {n}"} for n in first_lines]})


# Level-1 lines of the ten-minute fixture where its subjects change (00:00, 02:30, 05:00, 07:31).
SUBJECT_LINES = (1, 13, 25, 31)


def happy_script(transcript: SpeakerTranscript) -> list[dict]:
    """Four chapters, every one split in two, plain summaries: 4 + 8 nodes, no fallback needed."""
    lines = build_view(transcript).lines
    assert [round(lines[n - 1].start) for n in SUBJECT_LINES] == [0, 151, 300, 452]
    return [
        {"match": CHAPTERS, "content": topics(*SUBJECT_LINES), "times": 1},
        {"match": "SplitDecision", "content": json.dumps({"reason": "It moves through two points.", "subdivide": True})},
        {"match": SECTIONS, "content": topics(1, 5)},
        {"match": "NodeSummary", "content": json.dumps({"summary": "The speakers discuss this part.", "title": "Discussion of this part"})},
        {"match": "FileSummary", "content": json.dumps({"summary": "Four subjects are discussed in turn.", "title": "A talk on four subjects"})},
    ]


def chats(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] in ("request_start", "request_end") and e.get("endpoint") == "chat"]


def test_one_load_full_concurrency_and_eviction_after_the_last_chat(server, client, ten_minutes, tmp_path):
    server.script(happy_script(ten_minutes))
    tenancy = GpuTenancy(client)
    tree, stats = build_topic_tree(ten_minutes, client, tenancy=tenancy, cache_dir=tmp_path / "cache")

    assert check_tree(tree) == []
    assert [n.id for n in tree.walk()] == ["1", "1.1", "1.2", "2", "2.1", "2.2", "3", "3.1", "3.2", "4", "4.1", "4.2"]
    assert [round(n.start) for n in tree.nodes] == [0, 151, 300, 452]
    assert tree.nodes[-1].end == ten_minutes.duration_s
    assert stats.fallbacks == [] and stats.node_count == 12 and stats.depth == 2

    events = server.events()
    assert len(server.events(kind="load", model=LLM)) == 1
    assert server.events(kind="reload") == []
    unloads = server.events(kind="unload", model=LLM)
    assert [u["cause"] for u in unloads] == ["keep_alive_0"]
    last_chat_end = max(e["seq"] for e in events if e["kind"] == "request_end" and e["endpoint"] == "chat")
    assert unloads[0]["seq"] > last_chat_end

    starts = [e for e in chats(events) if e["kind"] == "request_start"]
    # level 1, then 4 split decisions, 4 level-2 calls, 12 summaries and the file summary
    assert len(starts) == stats.llm_calls == 22
    stages = {"split": starts[1:5], "level2": starts[5:9], "summary": starts[9:21]}
    assert {name: max(e["in_flight"] for e in batch) for name, batch in stages.items()} == {
        "split": 4, "level2": 4, "summary": 8,
    }
    assert max_in_flight(events)[LLM] == stats.max_in_flight == 8
    assert all(e["options"]["num_ctx"] == 8192 and e["keep_alive"] == "5m" and e["think"] is False for e in starts)
    assert all(e["options"]["temperature"] == 0 for e in starts)

    assert stats.loads == 1 and stats.reloads == 0 and stats.cache_misses == 22 and stats.cache_hits == 0
    assert stats.prompt_tokens > 0 and stats.eval_tokens > 0
    assert set(stats.stage_seconds) == {"level1", "split", "level2", "summary", "file"}
    assert [e["event"] for e in stats.tenancy_timeline] == ["warm", "acquire", "evict", "release"]
    assert stats.outline_md.splitlines()[2:4] == ["- 00:00-02:30 Discussion of this part", "  - 00:00-00:41 Discussion of this part"]


def test_rerun_of_an_unchanged_file_makes_no_llm_call_and_loads_nothing(server, client, ten_minutes, tmp_path):
    server.script(happy_script(ten_minutes))
    first, _ = build_topic_tree(ten_minutes, client, cache_dir=tmp_path / "cache")
    seen = server.events()[-1]["seq"]

    again, stats = build_topic_tree(ten_minutes, client, cache_dir=tmp_path / "cache")
    assert again == first
    assert chats(server.events(since=seen)) == []
    assert server.events(kind="load", since=seen) == [] and server.events(kind="unload", since=seen) == []
    assert stats.llm_calls == 0 and stats.loads == 0 and stats.cache_misses == 0 and stats.cache_hits == 22
    assert stats.tenancy_timeline == []

    # a changed transcript misses the cache where its prompts changed
    changed = ten_minutes.model_copy(deep=True)
    changed.utterances[-1].words[-1].text = " conveyors"
    _, stats = build_topic_tree(changed, client, cache_dir=tmp_path / "cache")
    assert stats.llm_calls > 0 and stats.loads == 1


def test_num_ctx_l1_costs_exactly_one_reload_and_reports_it(server, client, ten_minutes):
    server.script(happy_script(ten_minutes))
    tree, stats = build_topic_tree(ten_minutes, client, num_ctx_l1=16384)

    assert check_tree(tree) == []
    assert len(server.events(kind="reload", model=LLM)) == 1
    assert [e["num_ctx"] for e in server.events(kind="load", model=LLM)] == [16384, 8192]
    contexts = [e["options"]["num_ctx"] for e in chats(server.events()) if e["kind"] == "request_start"]
    assert contexts[0] == 16384 and set(contexts[1:]) == {8192}
    assert stats.loads == 2 and stats.reloads == 1
    assert [e["num_ctx"] for e in stats.load_events] == [16384, 8192]
    assert "16384 to 8192" in stats.load_events[1]["reason"]


ADVERSARIAL = {
    # level 1: the client re-asks twice on schema failures, then the stage falls back
    "l1 not json": ([{"match": "TopicStarts", "content": "Chapters: garden, budget.", "times": 3}], "level1"),
    "l1 wrong types": ([{"match": "TopicStarts", "content": '{"topics": "many"}', "times": 3}], "level1"),
    "l1 empty list": ([{"match": "TopicStarts", "content": '{"topics": []}', "times": 3}], "level1"),
    "l1 out of range": ([{"match": "TopicStarts", "content": topics(1, 999), "times": 3}], "level1"),
    # schema-valid nonsense: one re-ask naming the problem, then the fallback
    "l1 unsorted": ([{"match": "TopicStarts", "content": topics(1, 30, 12), "times": 2}], "level1"),
    "l1 overlapping": ([{"match": "TopicStarts", "content": topics(1, 12, 12, 30), "times": 2}], "level1"),
    "split wrong types": ([{"match": "SplitDecision", "content": '{"reason": 3, "subdivide": "maybe"}'}], "split"),
    "l2 unsorted": (
        [
            {"match": CHAPTERS, "content": topics(*SUBJECT_LINES), "times": 1},
            {"match": "SplitDecision", "content": json.dumps({"reason": "Two points.", "subdivide": True})},
            {"match": "TopicStarts", "content": topics(1, 6, 3)},
        ],
        "level2",
    ),
    "empty title": ([{"match": "NodeSummary", "content": json.dumps({"summary": "The speakers talk.", "title": "  "})}], "summary"),
    "summary not json": ([{"match": "NodeSummary", "content": "Sure! Here is the summary."}], "summary"),
    "invented names": (
        [{"match": "NodeSummary", "content": json.dumps({"summary": "Speaker 1 sails with Captain Ahab.", "title": "Ahab at the harbour"})}],
        "summary",
    ),
    "file summary invented": (
        [{"match": "FileSummary", "content": json.dumps({"summary": "A trip to Zanzibar.", "title": "Zanzibar trip notes"})}],
        "file",
    ),
}


@pytest.mark.parametrize("case", ADVERSARIAL)
def test_adversarial_answers_still_give_a_valid_tree(server, client, ten_minutes, tmp_path, case):
    rules, stage = ADVERSARIAL[case]
    server.script(rules)
    tree, stats = build_topic_tree(ten_minutes, client, cache_dir=tmp_path / "cache")

    assert check_tree(tree) == []
    assert stage in {f.stage for f in stats.fallbacks}, stats.fallbacks
    assert all(f.reason for f in stats.fallbacks)
    text = " ".join([tree.title, tree.summary, *(f"{n.title} {n.summary}" for n in tree.walk())])
    assert "Ahab" not in text and "Zanzibar" not in text
    assert server.events(kind="unload", model=LLM)[-1]["cause"] == "keep_alive_0"

    # the unusable answers are cached too: a rerun is identical and asks nothing
    seen = server.events()[-1]["seq"]
    again, rerun = build_topic_tree(ten_minutes, client, cache_dir=tmp_path / "cache")
    assert again == tree and rerun.fallbacks == stats.fallbacks
    assert chats(server.events(since=seen)) == [] and rerun.loads == 0


def test_l2_fires_on_a_short_clip_with_a_conversation(server, client):
    clip = make_transcript([("garden", 50.0, ["A", "B"]), ("budget", 50.0, ["B", "A"])], turn_s=10)
    server.script([
        {"match": CHAPTERS, "content": topics(1), "times": 1},
        {"match": "SplitDecision", "content": json.dumps({"reason": "Garden, then budget.", "subdivide": True})},
        {"match": SECTIONS, "content": topics(1, 4)},
    ])
    tree, stats = build_topic_tree(clip, client)
    assert check_tree(tree) == []
    assert len(tree.nodes) == 1 and len(tree.nodes[0].children) == 2 and tree.depth == 2


def test_a_caller_holding_the_llm_tenant_keeps_one_load_across_files(server, client, ten_minutes):
    clip = make_transcript([("garden", 50.0, ["A", "B"]), ("budget", 50.0, ["B", "A"])], turn_s=10)
    tenancy = GpuTenancy(client)
    with tenancy.tenant("llm"):
        for transcript in (ten_minutes, clip):
            tree, stats = build_topic_tree(transcript, client, tenancy=tenancy)
            assert check_tree(tree) == [] and stats.llm_calls > 0 and stats.loads == 0
        assert server.events(kind="unload") == []
    assert len(server.events(kind="load", model=LLM)) == 1
    assert [u["cause"] for u in server.events(kind="unload", model=LLM)] == ["keep_alive_0"]


def test_model_not_pulled_is_a_legible_error_and_nothing_loads(start_server, make_client, ten_minutes, tmp_path):
    server = start_server(pulled=["nomic-embed-text"])
    client = make_client(server.url)
    for cache_dir in (tmp_path / "cache", None):
        with pytest.raises(ModelNotFoundError) as caught:
            build_topic_tree(ten_minutes, client, cache_dir=cache_dir)
        message = str(caught.value)
        assert "'gemma4:latest'" in message and "autorag pull gemma4:latest" in message and "ollama pull" in message
        assert "Traceback" not in message and "\n" not in message
    assert server.events(kind="load") == []


def test_a_stage_that_raises_still_evicts_the_model(start_server, make_client, ten_minutes):
    # every answer takes 1.5 s and the client gives up after 0.5 s without retrying
    server = start_server(delay=1.5)
    client = make_client(server.url, timeout=0.5, request_retries=0)
    with pytest.raises(OllamaTimeoutError):
        build_topic_tree(ten_minutes, client)
    assert len(server.events(kind="load", model=LLM)) == 1
    assert server.events(kind="unload", model=LLM)[-1]["cause"] == "keep_alive_0"
    assert client.ps() == []


def test_no_speech_needs_no_server(make_client, tmp_path):
    # nothing listens on port 9: any request would fail
    client = make_client("http://127.0.0.1:9")
    silent = SpeakerTranscript(key="silence.wav", duration_s=42.0, language="en", utterances=[])
    tree, stats = build_topic_tree(silent, client)
    assert check_tree(tree) == []
    assert [(n.start, n.end, n.title) for n in tree.nodes] == [(0.0, 42.0, "No speech")]
    assert stats.llm_calls == 0 and stats.loads == 0
