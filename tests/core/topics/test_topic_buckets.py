import re

from autorag_dagster.core.topics.buckets import (
    build_view,
    fmt_time,
    render_lines,
    speaker_labels,
    tokens,
)
from tests.support.synthetic_transcripts import TEN_MINUTES, make_transcript

LINE = re.compile(r"^\[(\d+)\] (\d\d:\d\d)-(\d\d:\d\d) (Speaker \d+): (.+)$")


def test_fmt_time_minutes_and_hours():
    assert fmt_time(0) == "00:00"
    assert fmt_time(59.99) == "00:59"
    assert fmt_time(754.2) == "12:34"
    assert fmt_time(3723) == "1:02:03"


def test_speaker_labels_follow_first_appearance(ten_minutes):
    # SPEAKER_01 talks first, then SPEAKER_00, then SPEAKER_02.
    assert speaker_labels(ten_minutes) == {
        "SPEAKER_01": "Speaker 1",
        "SPEAKER_00": "Speaker 2",
        "SPEAKER_02": "Speaker 3",
    }


def test_lines_stay_inside_one_bucket_and_one_speaker(ten_minutes):
    view = build_view(ten_minutes, bucket_s=30)
    assert view.lines, "a transcript with speech has lines"
    for line in view.lines:
        # the line's first and last word start in the same 30 s bucket
        last_word_start = line.end - 0.35
        assert int(line.start // 30) == int(last_word_start // 30), line
        assert line.speaker in {"Speaker 1", "Speaker 2", "Speaker 3"}
    starts = [ln.start for ln in view.lines]
    assert starts == sorted(starts)
    # every speaker change starts a new line
    for turn in view.turns:
        assert any(abs(ln.start - turn) < 1e-9 for ln in view.lines)
    # the text survives intact
    assert view.text().split() == [w.text.strip() for u in ten_minutes.utterances for w in u.words]


def test_render_format_and_numbering(ten_minutes):
    view = build_view(ten_minutes)
    rendered = render_lines(view.lines).splitlines()
    assert len(rendered) == len(view.lines)
    for i, row in enumerate(rendered, 1):
        m = LINE.match(row)
        assert m, row
        assert int(m.group(1)) == i


def test_render_fits_a_character_budget_without_dropping_lines(ten_minutes):
    view = build_view(ten_minutes)
    full = render_lines(view.lines)
    budget = len(full) // 2
    short = render_lines(view.lines, max_chars=budget)
    assert len(short) <= budget
    assert len(short.splitlines()) == len(view.lines)
    assert "…" in short


def test_utterances_without_word_timings_are_spread_over_their_span():
    transcript = make_transcript(TEN_MINUTES[:2], with_words=False)
    view = build_view(transcript, bucket_s=30)
    assert view.text().split() == " ".join(u.text for u in transcript.utterances).split()
    # utterances that cross a bucket edge are cut there (each spread word lasts about 0.4 s)
    assert len(view.lines) > len(transcript.utterances)
    assert all(int(ln.start // 30) == int((ln.end - 0.5) // 30) for ln in view.lines)


def test_within_and_speaker_helpers(ten_minutes):
    view = build_view(ten_minutes)
    harbour = view.within(300, 450)
    assert harbour and {ln.speaker for ln in harbour} == {"Speaker 3"}
    assert view.turns_in(305, 445) == 0  # a monologue
    assert view.turns_in(0, 150) >= 5
    assert view.speakers_in(0, 150) == ["Speaker 1", "Speaker 2"]
    # the last span keeps every line up to the end
    assert view.within(view.lines[-1].start, view.duration)[-1] == view.lines[-1]


def test_tokens_lowercase_and_drop_possessives():
    assert tokens("Marlowe's ferry, O'Brien's BOAT!") == ["marlowe", "ferry", "o'brien", "boat"]
