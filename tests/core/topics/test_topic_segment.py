"""Lexical-cohesion segmentation: candidates and chosen starts, no model involved."""

import time

import pytest

from autorag_dagster.core.topics.segment import (
    Candidate,
    Cohesion,
    choose,
    cutoff,
    depth_scores,
    opens_with_cue,
    segment,
    units,
)
from tests.support.synthetic_transcripts import make_transcript, sample_meeting


def near(found: list[float], truth: list[float], tol: float = 8.0) -> bool:
    return len(found) == len(truth) and all(abs(a - b) <= tol for a, b in zip(found, truth))


def test_units_are_utterances_and_long_ones_are_cut_at_sentence_ends(ten_minutes):
    pieces = units(ten_minutes, max_s=20.0)
    assert [p.start for p in pieces] == sorted(p.start for p in pieces)
    assert " ".join(p.text for p in pieces).split() == [w.text.strip() for u in ten_minutes.utterances for w in u.words]
    # every unit starts at an utterance start or right after a sentence end
    starts = {u.start for u in ten_minutes.utterances}
    words = [w for u in ten_minutes.utterances for w in u.words]
    after_sentence = {b.start for a, b in zip(words, words[1:]) if a.text.strip().endswith(".")}
    assert all(p.start in starts or p.start in after_sentence for p in pieces)
    monologue = make_transcript([("harbour", 120.0, ["A"])], turn_s=120.0)
    assert len(monologue.utterances) == 1 and len(units(monologue, max_s=20.0)) >= 4


def test_finds_the_subject_changes_of_a_synthetic_meeting(ten_minutes):
    started = time.perf_counter()
    starts = segment(units(ten_minutes), 0.0, ten_minutes.duration_s, min_len=45.0, max_topics=12)
    assert time.perf_counter() - started < 0.5
    assert near(starts, [0.0, 150.9, 300.3, 451.7])


def test_one_subject_stays_one_topic():
    for plan in ([("harbour", 300.0, ["A", "B"])], [("garden", 200.0, ["A"])], [("robots", 90.0, ["A", "B", "C"])]):
        transcript = make_transcript(plan, turn_s=15.0)
        assert segment(units(transcript), 0.0, transcript.duration_s, min_len=20.0, max_topics=12) == [0.0]


def test_the_sample_meeting_splits_into_its_three_subjects():
    transcript, truth = sample_meeting()
    starts = segment(units(transcript), 0.0, transcript.duration_s, min_len=transcript.duration_s / 5, max_topics=5)
    assert near(starts, truth)


def test_candidates_fall_on_unit_starts_inside_the_span(ten_minutes):
    cohesion = Cohesion(units(ten_minutes))
    found = cohesion.candidates(100.0, 400.0)
    assert found and all(100.0 <= c.time < 400.0 for c in found)
    assert all(cohesion.lines[c.index].start == c.time for c in found)
    assert [c.time for c in found] == sorted(c.time for c in found)
    assert len(cohesion.candidates(0.0, ten_minutes.duration_s, limit=2)) == 2


def test_depth_is_the_climb_to_the_peaks_on_both_sides():
    assert depth_scores([0.9, 0.5, 0.2, 0.6, 0.8]) == pytest.approx([0.0, 0.4, 1.3, 0.2, 0.0])
    assert depth_scores([0.5, 0.5]) == [0.0, 0.0]


def test_choose_keeps_deep_candidates_spaced_and_capped():
    found = [Candidate(1, 50.0, 0.9), Candidate(2, 60.0, 0.8), Candidate(3, 150.0, 0.7), Candidate(4, 190.0, 0.05)]
    assert cutoff([c.depth for c in found]) == pytest.approx(max(0.12, 0.6125 - 0.3418 / 2), abs=0.01)
    assert choose(found, 0.0, 200.0, min_len=30.0, max_topics=12) == [0.0, 50.0, 150.0]
    assert choose(found, 0.0, 200.0, min_len=30.0, max_topics=2) == [0.0, 50.0]
    assert choose([], 0.0, 200.0, min_len=30.0, max_topics=12) == [0.0]


def test_fixed_starts_are_kept_first_whatever_their_depth():
    found = [Candidate(1, 50.0, 0.9), Candidate(2, 60.0, 0.3, cue=True), Candidate(3, 150.0, 0.7)]
    # without it the deeper 50.0 wins the spacing; fixed, the announced 60.0 stays and 50.0 goes
    assert choose(found, 0.0, 200.0, min_len=30.0, max_topics=12) == [0.0, 50.0, 150.0]
    assert choose(found, 0.0, 200.0, min_len=30.0, max_topics=12, fixed=[60.0]) == [0.0, 60.0, 150.0]
    # a fixed start still respects the ends of the span, and the cap
    assert choose(found, 0.0, 300.0, min_len=55.0, max_topics=12, fixed=[50.0]) == [0.0, 150.0]
    assert choose(found, 0.0, 200.0, min_len=30.0, max_topics=2, fixed=[60.0, 150.0]) == [0.0, 150.0]


def test_a_candidate_at_an_announcement_says_so():
    transcript, truth = sample_meeting()
    found = Cohesion(units(transcript)).candidates(0.0, transcript.duration_s)
    announced = [c for c in found if c.cue]
    assert announced and all(opens_with_cue(Cohesion(units(transcript)).lines[c.index].text) for c in announced)
    assert not any(c.cue for c in found if c not in announced)


def test_discourse_cues():
    assert opens_with_cue("Good. Now the budget.")
    assert opens_with_cue("Finally, the summer festival.")
    assert opens_with_cue("Thanks. Let me start with the garden.")
    assert not opens_with_cue("The budget is fine now.")
