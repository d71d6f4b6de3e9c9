import pytest

from autorag_dagster.core.align import UNKNOWN_SPEAKER, assign_speakers
from autorag_dagster.core.types import Diarization, Segment, SpeakerTurn, Transcript, Word


def transcript(*words: tuple[float, float, str]) -> Transcript:
    return Transcript(
        key="k.wav",
        language="en",
        duration_s=30.0,
        model="tiny.en",
        device="cpu",
        segments=[
            Segment(
                id=0,
                start=words[0][0],
                end=words[-1][1],
                text=" ".join(w[2] for w in words),
                words=[Word(start=s, end=e, text=t) for s, e, t in words],
            )
        ],
    )


def diarization(*turns: tuple[float, float, str]) -> Diarization:
    return Diarization(
        key="k.wav",
        backend="test",
        duration_s=30.0,
        turns=[SpeakerTurn(start=s, end=e, speaker=spk) for s, e, spk in turns],
    )


def speakers_of(result) -> list[str]:
    return [w.speaker for u in result.utterances for w in u.words]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ((1.0, 1.5), "A"),  # inside A
        ((4.8, 5.4), "B"),  # 0.2 s in A, 0.4 s in B
        ((4.5, 5.1), "A"),  # 0.5 s in A, 0.1 s in B
    ],
)
def test_word_goes_to_the_turn_it_overlaps_most(word, expected):
    turns = diarization((0.0, 5.0, "A"), (5.0, 7.0, "B"))
    assert speakers_of(assign_speakers(transcript((*word, "w")), turns)) == [expected]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ((5.2, 5.5), "A"),  # gap 5-10: 0.2 s after A, 4.5 s before B
        ((9.0, 9.6), "B"),  # 0.4 s before B
        ((0.0, 0.5), "A"),  # before the first turn
        ((20.0, 21.0), "C"),  # after the last turn
    ],
)
def test_word_without_overlap_goes_to_the_nearest_turn(word, expected):
    turns = diarization((1.0, 5.0, "A"), (10.0, 12.0, "B"), (12.5, 15.0, "C"))
    assert speakers_of(assign_speakers(transcript((*word, "w")), turns)) == [expected]


def test_overlapping_turns_pick_the_larger_overlap():
    turns = diarization((0.0, 6.0, "A"), (4.0, 10.0, "B"))
    result = assign_speakers(transcript((3.0, 3.5, "one"), (5.0, 6.5, "two"), (5.8, 7.0, "three")), turns)
    assert speakers_of(result) == ["A", "B", "B"]


def test_consecutive_words_of_one_speaker_form_utterances():
    words = [(0.0, 0.4, "Hello"), (0.5, 0.9, "there."), (1.2, 1.6, "Hi"), (1.7, 2.0, "back."), (2.4, 2.9, "Bye.")]
    turns = diarization((0.0, 1.0, "A"), (1.1, 2.2, "B"), (2.3, 3.0, "A"))
    result = assign_speakers(transcript(*words), turns)
    assert [(u.speaker, u.start, u.end, u.text) for u in result.utterances] == [
        ("A", 0.0, 0.9, "Hello there."),
        ("B", 1.2, 2.0, "Hi back."),
        ("A", 2.4, 2.9, "Bye."),
    ]
    assert result.speakers == ["A", "B"]
    assert result.talk_time() == pytest.approx({"A": 1.4, "B": 0.8})
    assert (result.key, result.language, result.duration_s) == ("k.wav", "en", 30.0)


def test_no_turns_labels_words_unknown():
    result = assign_speakers(transcript((0.0, 1.0, "alone")), diarization())
    assert speakers_of(result) == [UNKNOWN_SPEAKER]


def test_no_words_no_utterances():
    empty = Transcript(key="k.wav", language="en", duration_s=3.0, model="m", device="cpu", segments=[])
    assert assign_speakers(empty, diarization((0.0, 1.0, "A"))).utterances == []
