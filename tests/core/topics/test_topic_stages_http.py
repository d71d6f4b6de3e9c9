"""The topic stages against the local Ollama-compatible server over real HTTP, read through its event log."""

from __future__ import annotations

import json

import pytest

from autorag_dagster.core.topics import (
    build_topic_tree,
    check_tree,
    topic_quality_problems,
)
from autorag_dagster.core.topics.stages import (
    FileContext,
    TopicConfig,
    boundary_candidates,
)
from autorag_dagster.core.types import SpeakerTranscript
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.localserve import max_in_flight
from autorag_dagster.ollama import ModelNotFoundError, OllamaTimeoutError
from tests.support.models import LLM
from tests.support.synthetic_transcripts import EIGHT_SUBJECTS, make_transcript

CHAPTERS = "the recording divides into chapters"
SECTIONS = "the section divides into sub-sections"


TRUSTED = TopicConfig(keep_strong_changes=False)
"""A model trusted to merge even strong lexical changes: the scripted answers below merge some."""


def changes(*numbers: int) -> str:
    return json.dumps({"changes": list(numbers)})


@pytest.fixture
def eight_subjects() -> SpeakerTranscript:
    return make_transcript(EIGHT_SUBJECTS, key="eight.wav")


# A word of each subject's text (none of them in the prompt's instructions or example) and a title naming it.
SUBJECT_TITLES = {
    "tomatoes": "Watering the tomatoes",
    "quarterly": "Quarterly budget",
    "ferry": "Ferry departures",
    "gripper": "Robot arm calibration",
    "tents": "Summer festival plans",
    "builders": "Library repairs",
    "coach": "Football training",
    "storms": "Storms before the harvest",
}


def happy_script(transcript: SpeakerTranscript) -> list[dict]:
    """Seven lexical candidates; the model keeps every second one, the clearest among them (five
    chapters, three of two subjects), then splits each long chapter at its one inner candidate:
    5 + 6 nodes, no fallback needed."""
    ctx = FileContext.of(transcript, TopicConfig())
    found = boundary_candidates(ctx, 0.0, transcript.duration_s, min_len=TopicConfig().min_l1(transcript.duration_s))
    assert [round(c.time) for c in found] == [76, 151, 227, 302, 377, 453, 528]
    return [
        {"match": CHAPTERS, "content": changes(1, 3, 5, 7), "times": 1},
        {
            "match": "SplitDecision",
            "content": json.dumps({"reason": "It moves through two points.", "subdivide": True}),
            "seconds": 0.3,
        },
        {"match": SECTIONS, "content": changes(1), "seconds": 0.3},
        *(
            {
                "match": word,
                "content": json.dumps({"summary": f"The speakers discuss {title.lower()}.", "title": title}),
                "seconds": 0.3,  # as slow as a model: the batch overlaps however loaded the machine is
            }
            for word, title in SUBJECT_TITLES.items()
        ),
        {
            "match": "FileSummary",
            "content": json.dumps(
                {"summary": "Eight subjects are discussed in turn.", "title": "From tomatoes to the wheat harvest"}
            ),
        },
    ]


def chats(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] in ("request_start", "request_end") and e.get("endpoint") == "chat"]


def test_one_load_full_concurrency_and_eviction_after_the_last_chat(server, client, eight_subjects, tmp_path):
    server.script(happy_script(eight_subjects))
    tenancy = GpuTenancy(client)
    tree, stats = build_topic_tree(
        eight_subjects, client, tenancy=tenancy, cache_dir=tmp_path / "cache", config=TRUSTED
    )

    assert check_tree(tree) == []
    assert [n.id for n in tree.walk()] == ["1", "2", "2.1", "2.2", "3", "3.1", "3.2", "4", "4.1", "4.2", "5"]
    assert [round(n.start) for n in tree.nodes] == [0, 76, 227, 377, 528]
    assert [round(c.start) for c in tree.nodes[1].children] == [76, 151]
    assert tree.nodes[-1].end == eight_subjects.duration_s
    assert stats.fallbacks == [] and stats.fallback_counts == {} and stats.level1_source == "llm"
    assert stats.node_count == 11 and stats.depth == 2

    events = server.events()
    assert len(server.events(kind="load", model=LLM)) == 1
    assert server.events(kind="reload") == []
    unloads = server.events(kind="unload", model=LLM)
    assert [u["cause"] for u in unloads] == ["keep_alive_0"]
    last_chat_end = max(e["seq"] for e in events if e["kind"] == "request_end" and e["endpoint"] == "chat")
    assert unloads[0]["seq"] > last_chat_end

    starts = [e for e in chats(events) if e["kind"] == "request_start"]
    # level 1, then 3 split decisions, 3 level-2 calls, 11 summaries and the file summary
    assert len(starts) == stats.llm_calls == 19
    stages = {"split": starts[1:4], "level2": starts[4:7], "summary": starts[7:18]}
    assert {name: max(e["in_flight"] for e in batch) for name, batch in stages.items()} == {
        "split": 3,
        "level2": 3,
        "summary": 8,
    }
    assert max_in_flight(events)[LLM] == stats.max_in_flight == 8
    assert all(e["options"]["num_ctx"] == 8192 and e["keep_alive"] == "5m" and e["think"] is False for e in starts)
    assert all(e["options"]["temperature"] == 0 for e in starts)

    assert stats.loads == 1 and stats.reloads == 0 and stats.cache_misses == 19 and stats.cache_hits == 0
    assert stats.prompt_tokens > 0 and stats.eval_tokens > 0
    assert set(stats.stage_seconds) == {"level1", "split", "level2", "summary", "file"}
    assert [e["event"] for e in stats.tenancy_timeline] == ["warm", "acquire", "evict", "release"]
    assert stats.outline_md.splitlines()[2:6] == [
        "- 00:00-01:15 Watering the tomatoes",
        "- 01:15-03:46 Quarterly budget",
        "  - 01:15-02:31 Quarterly budget",
        "  - 02:31-03:46 Ferry departures",
    ]


def test_rerun_of_an_unchanged_file_makes_no_llm_call_and_loads_nothing(server, client, eight_subjects, tmp_path):
    server.script(happy_script(eight_subjects))
    first, _ = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache", config=TRUSTED)
    seen = server.events()[-1]["seq"]

    again, stats = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache", config=TRUSTED)
    assert again == first
    assert chats(server.events(since=seen)) == []
    assert server.events(kind="load", since=seen) == [] and server.events(kind="unload", since=seen) == []
    assert stats.llm_calls == 0 and stats.loads == 0 and stats.cache_misses == 0 and stats.cache_hits == 19
    assert stats.tenancy_timeline == []

    # a changed transcript misses the cache where its prompts changed
    changed = eight_subjects.model_copy(deep=True)
    changed.utterances[-1].words[-1].text = " conveyors"
    _, stats = build_topic_tree(changed, client, cache_dir=tmp_path / "cache", config=TRUSTED)
    assert stats.llm_calls > 0 and stats.loads == 1


def test_num_ctx_l1_costs_exactly_one_reload_and_reports_it(server, client, eight_subjects):
    server.script(happy_script(eight_subjects))
    tree, stats = build_topic_tree(eight_subjects, client, num_ctx_l1=16384, config=TRUSTED)

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
    "l1 not json": ([{"match": "SubjectChanges", "content": "Chapters: garden, budget.", "times": 3}], "level1"),
    "l1 wrong types": ([{"match": "SubjectChanges", "content": '{"changes": "many"}', "times": 3}], "level1"),
    "l1 not a candidate": ([{"match": "SubjectChanges", "content": changes(1, 99), "times": 3}], "level1"),
    "l1 too many": ([{"match": "SubjectChanges", "content": changes(*range(1, 9)), "times": 3}], "level1"),
    # schema-valid nonsense: one re-ask naming the problem, then the fallback
    "l1 unsorted": ([{"match": "SubjectChanges", "content": changes(3, 1), "times": 2}], "level1"),
    "l1 repeated": ([{"match": "SubjectChanges", "content": changes(1, 1), "times": 2}], "level1"),
    "split wrong types": (
        [
            {"match": CHAPTERS, "content": changes(1, 3, 5, 7), "times": 1},
            {"match": "SplitDecision", "content": '{"reason": 3, "subdivide": "maybe"}'},
        ],
        "split",
    ),
    "l2 repeated": (
        [
            {"match": CHAPTERS, "content": changes(1, 3, 5, 7), "times": 1},
            {"match": "SplitDecision", "content": json.dumps({"reason": "Two points.", "subdivide": True})},
            {"match": "SubjectChanges", "content": changes(1, 1)},
        ],
        "level2",
    ),
    "empty title": (
        [{"match": "NodeSummary", "content": json.dumps({"summary": "The speakers talk.", "title": "  "})}],
        "summary",
    ),
    "summary not json": ([{"match": "NodeSummary", "content": "Sure! Here is the summary."}], "summary"),
    "invented names": (
        [
            {
                "match": "NodeSummary",
                "content": json.dumps(
                    {"summary": "Speaker 1 sails with Captain Ahab.", "title": "Ahab at the harbour"}
                ),
            }
        ],
        "summary",
    ),
    "title echoes the prompt": (
        [
            {
                "match": "NodeSummary",
                "content": json.dumps({"summary": "Speaker 1 at 00:00: words.", "title": "Part: 00:00-02:30"}),
            }
        ],
        "summary",
    ),
    "title of the first words": (
        [
            {
                "match": "NodeSummary",
                "content": json.dumps({"summary": "They talk.", "title": "The robot arm calibrates"}),
            },
            {
                "match": "NodeSummary",
                "content": json.dumps({"summary": "They talk.", "title": "Tomatoes need deep watering"}),
            },
        ],
        "summary",
    ),
    "file summary invented": (
        [
            {
                "match": "FileSummary",
                "content": json.dumps({"summary": "A trip to Zanzibar.", "title": "Zanzibar trip notes"}),
            }
        ],
        "file",
    ),
}


@pytest.mark.parametrize("case", ADVERSARIAL)
def test_adversarial_answers_still_give_a_valid_tree(server, client, eight_subjects, tmp_path, case):
    rules, stage = ADVERSARIAL[case]
    server.script(rules)
    tree, stats = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache", config=TRUSTED)

    assert check_tree(tree) == []
    assert stage in {f.stage for f in stats.fallbacks}, stats.fallbacks
    assert stats.fallback_counts[stage] == sum(f.stage == stage for f in stats.fallbacks)
    assert all(f.reason for f in stats.fallbacks)
    text = " ".join([tree.title, tree.summary, *(f"{n.title} {n.summary}" for n in tree.walk())])
    assert "Ahab" not in text and "Zanzibar" not in text and "00:00" not in text and "Part:" not in text
    # the fallback titles name the part's subject: a key phrase, never its first words
    transcript_words = {w.text.strip(" .").lower() for u in eight_subjects.utterances for w in u.words}
    for node in tree.walk():
        assert set(node.title.lower().split()) & transcript_words, node.title
        first = " ".join(w.text.strip() for u in eight_subjects.utterances for w in u.words if w.start >= node.start)
        assert not first.lower().startswith(node.title.lower()), node.title
    if stage == "level1":
        # the lexical segmentation stands in: the eight subjects, never equal cuts
        assert stats.level1_source == "lexical"
        assert [round(n.start) for n in tree.nodes] == [0, 76, 151, 227, 302, 377, 453, 528]
    assert topic_quality_problems(tree, stats, eight_subjects)  # the check sees every fallback
    assert server.events(kind="unload", model=LLM)[-1]["cause"] == "keep_alive_0"

    # a rerun gives the same tree; answers that never matched their schema were not cached and are asked again
    seen = server.events()[-1]["seq"]
    server.script(rules)
    again, rerun = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache", config=TRUSTED)
    assert again == tree and rerun.fallbacks == stats.fallbacks
    schema_failures = stats.validation_retries > 0
    assert bool(chats(server.events(since=seen))) == schema_failures


def test_l2_fires_on_a_short_clip_with_a_conversation(server, client):
    clip = make_transcript([("garden", 50.0, ["A", "B"]), ("budget", 50.0, ["B", "A"])], turn_s=10)
    server.script(
        [
            {"match": CHAPTERS, "content": changes(), "times": 1},
            {"match": "SplitDecision", "content": json.dumps({"reason": "Garden, then budget.", "subdivide": True})},
            {"match": SECTIONS, "content": changes(1)},
        ]
    )
    # a model trusted to merge even the clearest lexical change (the default keeps it)
    tree, stats = build_topic_tree(clip, client, config=TRUSTED)
    assert check_tree(tree) == []
    assert len(tree.nodes) == 1 and len(tree.nodes[0].children) == 2 and tree.depth == 2


def test_a_strong_change_the_model_drops_is_kept_without_a_re_ask(server, client, eight_subjects):
    server.script([{"match": "SubjectChanges", "content": changes(2, 4, 6), "times": 1}])
    tree, stats = build_topic_tree(eight_subjects, client)
    ctx = FileContext.of(eight_subjects, TopicConfig())
    duration = eight_subjects.duration_s
    found = boundary_candidates(ctx, 0.0, duration, min_len=TopicConfig().min_l1(duration))
    strong = [round(c.time) for c in found if c.depth >= TopicConfig().strong_factor * ctx.cohesion.cutoff(0, duration)]
    assert set(strong) - {151, 302, 453}  # strong changes the model left out
    # the model's three choices (151, 302, 453) and the strong changes, from one call
    assert stats.level1_source == "llm" and "level1" not in stats.fallback_counts
    assert [round(n.start) for n in tree.nodes] == sorted({0, 151, 302, 453, *strong})


def test_a_trusted_model_may_drop_strong_changes(server, client, eight_subjects):
    server.script([{"match": "SubjectChanges", "content": changes(2, 4, 6), "times": 1}])
    tree, stats = build_topic_tree(eight_subjects, client, config=TRUSTED)
    assert stats.level1_source == "llm" and len(tree.nodes) == 4


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


def test_a_cached_failure_is_asked_again_not_replayed(server, client, eight_subjects, tmp_path):
    broken = [{"match": "SubjectChanges", "content": "not json", "times": 3}]
    server.script(broken)
    _, first = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache")
    assert first.fallback_counts.get("level1") == 1 and first.validation_retries == 2

    # the model answers now (every candidate, as the lexical segmentation did): only the failed call
    # is asked again, everything else comes from the cache
    server.script([{"match": "SubjectChanges", "content": changes(*range(1, 8)), "times": 1}])
    seen = server.events()[-1]["seq"]
    _, second = build_topic_tree(eight_subjects, client, cache_dir=tmp_path / "cache")
    asked = [e for e in chats(server.events(since=seen)) if e["kind"] == "request_start"]
    assert len(asked) == 1 and second.level1_source == "llm" and "level1" not in second.fallback_counts
    assert second.cache_hits == first.cache_misses - 1  # all but the failed call


def test_summaries_that_keep_failing_stop_being_asked(server, client, eight_subjects):
    invented = json.dumps({"summary": "Captain Ahab sails to Zanzibar.", "title": "Zanzibar harbour tales"})
    calls = {}
    for give_up_after in (3, 0):
        server.script(
            [
                {"match": CHAPTERS, "content": changes(1, 2, 3, 4, 5, 6, 7), "times": 1},
                {"match": "NodeSummary", "content": invented},
            ]
        )
        config = TopicConfig(keep_strong_changes=False, give_up_after=give_up_after)
        tree, stats = build_topic_tree(eight_subjects, client, config=config)
        calls[give_up_after] = stats.llm_calls

        assert len(tree.nodes) == 8 and stats.fallback_counts["summary"] == 8
        not_asked = [f.node for f in stats.fallbacks if f.stage == "summary" and f.reason.startswith("not asked")]
        # the first three nodes asked (and re-asked); the other five not asked at all
        assert not_asked == (["4", "5", "6", "7", "8"] if give_up_after else [])
        for node in tree.nodes:  # every node still has its extractive title and summary
            assert node.title and node.summary and "Zanzibar" not in node.title + node.summary
    # level 1 and the file summary are the same in both: the difference is 5 nodes asked twice each
    assert calls[0] - calls[3] == 10


def test_one_good_summary_of_the_first_three_is_not_enough_to_go_on(server, client, eight_subjects):
    good = json.dumps({"summary": "The speakers water the tomatoes.", "title": "Watering the tomatoes"})
    invented = json.dumps({"summary": "Captain Ahab sails to Zanzibar.", "title": "Zanzibar harbour tales"})
    server.script(
        [
            {"match": CHAPTERS, "content": changes(1, 2, 3, 4, 5, 6, 7), "times": 1},
            {"match": "tomatoes", "content": good},
            {"match": "NodeSummary", "content": invented},
        ]
    )
    tree, stats = build_topic_tree(eight_subjects, client, config=TopicConfig(keep_strong_changes=False))
    assert tree.nodes[0].title == "Watering the tomatoes"
    not_asked = [f.node for f in stats.fallbacks if f.stage == "summary" and f.reason.startswith("not asked")]
    assert not_asked == ["4", "5", "6", "7", "8"]


def test_a_trusted_model_may_place_a_boundary_itself_and_it_lands_on_an_utterance(server, client, eight_subjects):
    server.script([{"match": "SubjectChanges", "content": json.dumps({"changes": [], "other_changes": [200.3]})}])
    tree, stats = build_topic_tree(eight_subjects, client, config=TRUSTED)
    starts = {ln.start for ln in FileContext.of(eight_subjects, TRUSTED).cohesion.lines}
    assert stats.level1_source == "llm" and len(tree.nodes) == 2
    assert tree.nodes[1].start in starts and abs(tree.nodes[1].start - 200.3) < 10


def test_a_small_model_is_not_offered_free_boundaries():
    from autorag_dagster.core.topics.schemas import subject_changes_schema

    assert "other_changes" not in subject_changes_schema(5, 3).model_json_schema()["properties"]
    free = subject_changes_schema(5, 3, (0.0, 600.0)).model_json_schema()["properties"]["other_changes"]
    assert free["items"] == {"type": "number", "minimum": 0.0, "maximum": 600.0} and free["maxItems"] == 2


def test_the_file_title_may_use_the_outlines_words_but_no_name_from_nowhere(server, client, eight_subjects):
    """The file stage reads the outline, not the transcript: a title-cased word of a section title
    ("Repairs", never spoken) is not an invented name; "Zanzibar" still is."""
    script = [rule for rule in happy_script(eight_subjects) if rule["match"] != "FileSummary"]
    answer = {"summary": "Tomatoes, the budget and the ferry come first.", "title": "Library Repairs and Storms"}
    server.script([{"match": "FileSummary", "content": json.dumps(answer)}, *script])
    tree, stats = build_topic_tree(eight_subjects, client, config=TRUSTED)
    assert "file" not in stats.fallback_counts, stats.fallbacks
    assert "Library repairs" in [n.title for n in tree.nodes] and tree.title == "Library Repairs and Storms"

    invented = {**answer, "title": "Library Repairs in Zanzibar"}
    server.clear_script()
    server.script([{"match": "FileSummary", "content": json.dumps(invented)}, *script])
    tree, stats = build_topic_tree(eight_subjects, client, config=TRUSTED)
    assert stats.fallback_counts.get("file") == 1 and "Zanzibar" not in tree.title, (tree.title, stats.fallbacks)


REASK = "That answer cannot be used"


@pytest.mark.parametrize("reask_fixes", [False, True])
def test_once_a_files_re_asks_fixed_nothing_its_later_answers_are_not_re_asked(
    server, client, eight_subjects, reask_fixes
):
    """Five chapters; the first three summaries are the probe. The tomatoes chapter's answer is
    rejected and re-asked; when that re-ask fixes it, the builders chapter's rejected answer is
    re-asked too, and when it does not, that answer goes straight to the fallback (counted)."""
    invented = json.dumps({"summary": "A trip to Zanzibar.", "title": "Zanzibar travel notes"})
    fixed = json.dumps({"summary": "The speakers discuss the tomatoes.", "title": "Watering the tomatoes"})
    server.script(
        [
            {"match": CHAPTERS, "content": changes(1, 3, 5, 7)},
            {"match": "SplitDecision", "content": json.dumps({"reason": "One subject.", "subdivide": False})},
            {
                "match": "FileSummary",
                "content": json.dumps(
                    {"summary": "The speakers discuss tomatoes, a budget and storms.", "title": "Tomatoes and storms"}
                ),
            },
            {"match": REASK, "content": fixed if reask_fixes else invented},
            {"match": "tomatoes", "content": invented},
            {"match": "builders", "content": invented},
            *(
                {"match": word, "content": json.dumps({"summary": f"The speakers discuss {t.lower()}.", "title": t})}
                for word, t in SUBJECT_TITLES.items()
            ),
        ]
    )
    tree, stats = build_topic_tree(eight_subjects, client, config=TRUSTED)
    assert [round(n.start) for n in tree.nodes] == [0, 76, 227, 377, 528] and tree.depth == 1
    by_node = {f.node: f.reason for f in stats.fallbacks if f.stage == "summary"}
    if reask_fixes:
        assert stats.semantic_retries == 2 and tree.nodes[0].title == "Watering the tomatoes"
        assert set(by_node) == {"4"} and "not re-asked" not in by_node["4"]
    else:
        assert stats.semantic_retries == 1
        assert set(by_node) == {"1", "4"} and "not re-asked" in by_node["4"] and "not re-asked" not in by_node["1"]
    assert stats.fallback_counts["summary"] == len(by_node)
    assert "Zanzibar" not in tree.nodes[3].title and tree.title == "Tomatoes and storms"
    # the requests the server saw: level 1, three split decisions, five summaries, the re-asks, the file summary
    starts = [e for e in chats(server.events()) if e["kind"] == "request_start"]
    assert len(starts) == stats.llm_calls == 1 + 3 + 5 + stats.semantic_retries + 1
    assert "file" not in stats.fallback_counts
