"""The topic-quality metrics on hand-computed cases, and the ground truth of the labelled scripts."""

from __future__ import annotations

import itertools

import pytest

from autorag_dagster import samples
from autorag_dagster.core.topics.quality import (
    boundary_f1,
    content_words,
    evaluate,
    first_words,
    match_subjects,
    names_subject,
    pk,
    prompt_echo,
    stem,
    titles_naming_share,
)
from autorag_dagster.core.types import TopicNode, TopicTree


def node(id_: str, start: float, end: float, title: str = "", summary: str = "", level: int = 1, children=()):
    return TopicNode(id=id_, level=level, start=start, end=end, title=title, summary=summary, children=list(children))


# --- boundary F1 ---------------------------------------------------------------------------------
def test_boundary_f1_counts_interior_boundaries_within_the_tolerance():
    # true interior: 40, 65; predicted interior: 45 (matches 40), 90 (no match). 0.0 is not a boundary.
    precision, recall, f1 = boundary_f1([0.0, 45.0, 90.0], [0.0, 40.0, 65.0], tolerance=8.0)
    assert (precision, recall) == (0.5, 0.5)
    assert f1 == pytest.approx(0.5)


def test_boundary_f1_tolerance_is_inclusive_and_strict_beyond():
    assert boundary_f1([0, 48.0], [0, 40.0], tolerance=8.0) == (1.0, 1.0, 1.0)
    assert boundary_f1([0, 48.01], [0, 40.0], tolerance=8.0) == (0.0, 0.0, 0.0)


def test_boundary_f1_matches_one_to_one():
    # Two predictions near one true boundary: only one of them counts.
    precision, recall, f1 = boundary_f1([0, 38.0, 42.0], [0, 40.0])
    assert (precision, recall) == (0.5, 1.0)
    assert f1 == pytest.approx(2 / 3)
    # A prediction between two true boundaries 10 s apart serves only one of them; the
    # greedy sweep still finds the largest matching: 36 -> 30, 44 -> 40.
    assert boundary_f1([0, 36.0, 44.0], [0, 30.0, 40.0]) == (1.0, 1.0, 1.0)


def test_boundary_f1_of_a_single_node_tree_is_zero_and_of_no_boundaries_at_all_one():
    assert boundary_f1([0.0], [0.0, 40.0, 65.0]) == (0.0, 0.0, 0.0)
    assert boundary_f1([0.0], [0.0]) == (1.0, 1.0, 1.0)
    assert boundary_f1([0.0, 50.0], [0.0]) == (0.0, 0.0, 0.0)


# --- Pk ------------------------------------------------------------------------------------------
def test_pk_of_a_perfect_segmentation_is_zero():
    assert pk([0, 50], [0, 50], duration=100) == 0.0


def test_pk_of_one_segment_against_two_halves():
    # k = 100 / 2 / 2 = 25; probes t = 0..75 (76); the truth straddles its boundary for
    # t = 25..49 (25 probes); the single predicted segment never does: 25 errors.
    assert pk([0], [0, 50], duration=100) == pytest.approx(25 / 76)


def test_pk_with_a_boundary_off_by_ten_seconds():
    # k = 25; truth straddles for t in 25..49, prediction (boundary at 60) for t in 35..59:
    # they disagree on t = 25..34 and t = 50..59, 20 of 76 probes.
    assert pk([0, 60], [0, 50], duration=100) == pytest.approx(20 / 76)


def test_pk_with_an_explicit_k():
    # k = 10, probes t = 0..90 (91); truth straddles t = 40..49, prediction none: 10 errors.
    assert pk([0], [0, 50], duration=100, k=10) == pytest.approx(10 / 91)


# --- words and titles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("trees", "tree"),
        ("planting", "planted"),
        ("cycling", "cycle"),
        ("libraries", "library"),
        ("matches", "match"),
        ("Watering", "water"),
        ("running", "run"),
    ],
)
def test_stem_brings_word_forms_together(a, b):
    assert stem(a) == stem(b)


def test_names_subject_ignores_case_and_plural():
    keywords = ["garden", "tree", "apple", "volunteer"]
    assert names_subject("Planting Apple Trees by the River", keywords)
    assert names_subject("VOLUNTEERS wanted", keywords)
    assert not names_subject("The budget for this year", keywords)
    assert not names_subject("", keywords)
    assert not names_subject("Streets", ["tree"])  # whole words only


def test_titles_naming_share_matches_each_node_to_the_subject_it_overlaps_most():
    subjects = [(0.0, 40.0, "garden"), (40.0, 65.0, "budget"), (65.0, 120.0, "festival")]
    keywords = {"garden": ["garden", "tree"], "budget": ["budget", "cost"], "festival": ["festival", "music"]}
    nodes = [
        node("1", 0, 30, "Apple trees"),  # garden: names it
        node("2", 30, 70, "Costs of the pipes"),  # 10 s garden, 25 s budget, 5 s festival -> budget: names it
        node("3", 70, 120, "Apple trees again"),  # festival: does not name it
    ]
    assert match_subjects(nodes, subjects) == ["garden", "budget", "festival"]
    assert titles_naming_share(nodes, subjects, keywords) == pytest.approx(2 / 3)
    assert titles_naming_share([], subjects, keywords) == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Part 2: the garden",
        "Part: garden",
        "speakers: Speaker 1, Speaker 2",
        "Speaker 1 at 00:12: \u201cGood morning\u201d",
        "00:30-01:00 the budget",
        "SPEAKER_00 talks",
        "[3] festival",
    ],
)
def test_prompt_echo_finds_scaffolding(text):
    assert prompt_echo(text)


@pytest.mark.parametrize("text", ["Apple trees by the river", "Budget: 4,000 dollars left", "The 2:1 win of the club"])
def test_prompt_echo_leaves_real_titles_alone(text):
    assert not prompt_echo(text)


def test_first_words():
    span = "Good morning everyone. Today we have three things to cover: the community garden."
    assert first_words("Good morning everyone\u2026", span)
    assert first_words("good morning, everyone. Today we", span)
    assert not first_words("Good", span)  # one word is not enough to tell
    assert not first_words("Morning everyone", span)
    assert not first_words("The community garden", span)


# --- evaluate ------------------------------------------------------------------------------------
def test_evaluate_bundles_the_figures():
    truth = samples.estimate_truth(samples.LABELLED_SAMPLE_MEETING)
    b0, f0 = truth.subjects[1][0], truth.subjects[2][0]  # starts of budget and festival
    tree = TopicTree(
        key="x",
        duration_s=truth.duration_s,
        nodes=[
            node("1", 0.0, b0 + 3, "Apple trees and volunteers", "Bob reports on the garden."),
            node(
                "2",
                b0 + 3,
                truth.duration_s,
                "Good morning everyone",
                "Speaker 1 at 00:00: \u201cGood\u201d",
                children=[
                    node("2.1", b0 + 3, f0, "Part 2: money", level=2),
                    node("2.2", f0, truth.duration_s, "Festival", level=2),
                ],
            ),
        ],
    )
    q = evaluate(tree, truth)
    assert (q.true_subjects, q.level1_nodes, q.nodes) == (3, 2, 4)
    assert (q.boundary_precision, q.boundary_recall) == (1.0, 0.5)
    assert q.boundary_f1 == pytest.approx(2 / 3)
    assert 0 < q.pk < 1
    assert q.pk == pytest.approx(pk([0.0, b0 + 3], [0.0, b0, f0], truth.duration_s))
    # node 2 overlaps the festival most; "Good morning everyone" does not name it
    assert [n.subject for n in q.per_node] == ["garden", "festival", "budget", "festival"]
    assert (q.titles_naming, q.titles_naming_share) == (1, 0.5)
    assert (q.prompt_echo_titles, q.prompt_echo_summaries, q.first_words_titles) == (1, 1, 1)
    assert q.row()["L1 / true"] == "2 / 3"


def test_evaluate_of_the_perfect_tree():
    truth = samples.estimate_truth(samples.FIVE_SUBJECT_PODCAST)
    tree = TopicTree(
        key="x",
        duration_s=truth.duration_s,
        nodes=[
            node(str(i + 1), s, e, f"About the {samples.SUBJECT_KEYWORDS[subject][0]}")
            for i, (s, e, subject) in enumerate(truth.subjects)
        ],
    )
    q = evaluate(tree, truth)
    assert (q.boundary_f1, q.pk, q.titles_naming_share) == (1.0, 0.0, 1.0)
    assert (q.prompt_echo_titles, q.first_words_titles) == (0, 0)


def test_evaluate_of_one_node_scores_zero_f1():
    truth = samples.estimate_truth(samples.FIVE_SUBJECT_PODCAST)
    tree = TopicTree(key="x", duration_s=truth.duration_s, nodes=[node("1", 0.0, truth.duration_s, "Cycling")])
    q = evaluate(tree, truth)
    assert q.boundary_f1 == 0.0
    assert q.pk > 0.3
    assert q.titles_naming_share == 1.0  # one node, overlapping cycling and astronomy equally: the earlier wins


# --- ground truth of the scripts ---------------------------------------------------------------------
LABELLED = {
    "sample": samples.LABELLED_SAMPLE_MEETING,
    "five": samples.FIVE_SUBJECT_PODCAST,
    "long": samples.long_script(10),
}


def test_the_sample_keeps_its_text_and_labels_garden_budget_festival():
    assert [(s, t) for s, t, _ in samples.LABELLED_SAMPLE_MEETING] == samples.SAMPLE_MEETING
    labels = [subject for *_, subject in samples.LABELLED_SAMPLE_MEETING]
    assert labels == ["garden"] * 6 + ["budget"] * 4 + ["festival"] * 9


@pytest.mark.parametrize("name", LABELLED)
def test_estimated_subject_spans_tile_the_conversation(name):
    truth = samples.estimate_truth(LABELLED[name])
    spans = truth.subjects
    assert spans[0][0] == 0.0 and spans[-1][1] == truth.duration_s
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(spans))
    assert len({subject for *_, subject in spans}) == len(spans)
    for start, _, subject in spans[1:]:
        first = next(line for line in truth.lines if line.subject == subject)
        assert start == first.start


def test_the_five_subject_podcast_has_five_subjects_four_voices_and_five_minutes_of_speech():
    truth = samples.estimate_truth(samples.FIVE_SUBJECT_PODCAST)
    assert [s for *_, s in truth.subjects] == ["cycling", "library", "football", "clinic", "astronomy"]
    assert len({line.speaker for line in truth.lines}) >= 3
    assert sum(line.end - line.start for line in truth.lines) >= 300


def test_the_long_script_lasts_the_minutes_asked_for():
    for minutes in (3, 10, 15):
        truth = samples.estimate_truth(samples.long_script(minutes))
        assert minutes * 60 <= truth.duration_s <= minutes * 60 + 120
    assert samples.base_subject("garden#2") == "garden"
    assert len(samples.estimate_truth(samples.long_script(10)).subjects) >= 10


@pytest.mark.parametrize("name", LABELLED)
def test_every_keyword_occurs_in_its_subjects_lines(name):
    truth = samples.estimate_truth(LABELLED[name])
    assert set(truth.keywords) == {subject for *_, subject in truth.subjects}
    for subject, keywords in truth.keywords.items():
        assert keywords
        spoken = content_words(truth.text_of(subject))
        missing = [k for k in keywords if stem(k) not in spoken]
        assert not missing, f"{subject}: {missing}"


def test_no_two_subjects_share_a_keyword():
    seen: dict[str, str] = {}
    for subject, keywords in samples.SUBJECT_KEYWORDS.items():
        for keyword in keywords:
            assert seen.setdefault(stem(keyword), subject) == subject, keyword


def test_speaker_transcript_of_the_script():
    truth = samples.estimate_truth(samples.LABELLED_SAMPLE_MEETING)
    transcript = samples.speaker_transcript(truth, key="sample.wav")
    assert len(transcript.utterances) == len(samples.SAMPLE_MEETING)
    assert transcript.speakers == ["alice", "bob"]
    first = transcript.utterances[0]
    assert first.words[0].start == first.start and first.words[-1].end == pytest.approx(first.end)


def test_a_synthesized_sample_carries_its_subject_spans_and_is_reused(tmp_path):
    first = samples.write_labelled(samples.LABELLED_SAMPLE_MEETING, tmp_path / "sample.wav")
    assert first.text == " ".join(text for _, text in samples.SAMPLE_MEETING)
    assert [s for *_, s in first.subjects] == ["garden", "budget", "festival"]
    assert first.subjects[0][0] == 0.0 and first.subjects[-1][1] == first.duration_s
    assert first.subjects[1][0] == first.turns[6][0] and first.subjects[2][0] == first.turns[10][0]
    assert first.truth.keywords["garden"] == samples.SUBJECT_KEYWORDS["garden"]
    written = (tmp_path / "sample.wav").stat().st_mtime_ns
    again = samples.write_labelled(samples.LABELLED_SAMPLE_MEETING, tmp_path / "sample.wav")
    assert again == first and (tmp_path / "sample.wav").stat().st_mtime_ns == written
    with pytest.raises(ValueError, match="no subject labels"):
        samples.synthesize(samples.SAMPLE_MEETING[:1], tmp_path / "plain.wav").truth  # noqa: B018
