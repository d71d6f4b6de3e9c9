import pytest

from autorag_dagster.core.align import UNKNOWN_SPEAKER, Smoothing, assign_speakers
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


# --- smoothing: short runs of another speaker inside one speaker's turn ----------------------
SENTENCE = [(0.0, 0.4, "we"), (0.45, 0.8, "planted"), (0.85, 1.2, "forty"), (1.25, 1.6, "trees"), (1.65, 2.0, "today")]


def test_a_word_in_a_gap_nearer_another_speaker_is_given_back():
    # A's turns stop around "forty" (a gap in the diarization); B's turn starts just after it.
    turns = diarization((0.0, 0.82, "A"), (1.22, 1.3, "B"), (1.3, 3.0, "A"), (4.0, 6.0, "B"))
    unsmoothed = assign_speakers(transcript(*SENTENCE), turns, smoothing=None)
    assert speakers_of(unsmoothed) == ["A", "A", "B", "A", "A"]
    assert unsmoothed.smoothed_words == 0

    result = assign_speakers(transcript(*SENTENCE), turns)
    assert speakers_of(result) == ["A"] * 5
    assert [u.text for u in result.utterances] == ["we planted forty trees today"]
    assert result.smoothed_words == 1


def test_a_short_turn_of_its_own_inside_another_speakers_turn_is_given_back():
    # The diarizer put 0.4 s of B in the middle of A's sentence: too short to be a turn, no overlap.
    turns = diarization((0.0, 0.82, "A"), (0.82, 1.22, "B"), (1.22, 3.0, "A"))
    result = assign_speakers(transcript(*SENTENCE), turns)
    assert speakers_of(result) == ["A"] * 5
    assert result.smoothed_words == 1


def test_two_words_are_given_back_and_counted():
    turns = diarization((0.0, 0.82, "A"), (0.82, 1.62, "B"), (1.62, 3.0, "A"))
    assert speakers_of(assign_speakers(transcript(*SENTENCE), turns, smoothing=None)) == ["A", "A", "B", "B", "A"]
    result = assign_speakers(transcript(*SENTENCE), turns)
    assert speakers_of(result) == ["A"] * 5
    assert result.smoothed_words == 2


def test_an_interjection_overlapping_the_speakers_turn_is_kept():
    # Overlapped speech: B's short turn lies inside A's continuing turn.
    words = [*SENTENCE[:2], (0.85, 1.2, "yes"), *SENTENCE[3:]]
    # A's turn has a short gap at the word (so B overlaps it most) and overlaps B's turn on both sides
    turns = diarization((0.0, 0.84, "A"), (1.0, 3.0, "A"), (0.8, 1.25, "B"))
    result = assign_speakers(transcript(*words), turns)
    assert speakers_of(result) == ["A", "A", "B", "A", "A"]
    assert result.smoothed_words == 0


def test_a_reply_with_a_real_turn_is_kept():
    turns = diarization((0.0, 0.82, "A"), (0.82, 1.9, "B"), (1.9, 3.0, "A"))  # B's turn: 1.08 s
    words = [*SENTENCE[:2], (0.85, 1.2, "yes"), (1.25, 1.6, "indeed"), (1.95, 2.3, "today")]
    result = assign_speakers(transcript(*words), turns)
    assert speakers_of(result) == ["A", "A", "B", "B", "A"]
    assert result.smoothed_words == 0


@pytest.mark.parametrize(
    ("middle", "why"),
    [
        ([(0.85, 1.0, "no"), (1.05, 1.2, "no"), (1.25, 1.4, "no")], "three words"),
        ([(0.85, 1.3, "absolutely"), (1.35, 1.9, "wonderful")], "1.05 s"),
    ],
)
def test_longer_runs_are_kept(middle, why):
    end = middle[-1][1]
    words = [*SENTENCE[:2], *middle, (end + 0.05, end + 0.4, "today")]
    turns = diarization((0.0, 0.82, "A"), (0.82, end + 0.01, "B"), (end + 0.01, end + 2.0, "A"))
    result = assign_speakers(transcript(*words), turns)
    assert speakers_of(result) == ["A", "A", *["B"] * len(middle), "A"], why
    assert result.smoothed_words == 0


def test_runs_at_the_edges_or_between_two_speakers_are_kept():
    words = [(0.0, 0.3, "oh"), (0.4, 0.8, "hello"), (0.9, 1.2, "there"), (1.3, 1.6, "bye")]
    turns = diarization((0.0, 0.35, "B"), (0.35, 1.25, "A"), (1.25, 1.7, "C"))
    result = assign_speakers(transcript(*words), turns)
    assert speakers_of(result) == ["B", "A", "A", "C"]
    assert result.smoothed_words == 0


def test_custom_rules_and_counts_over_several_runs():
    words = [(i * 0.5, i * 0.5 + 0.4, f"w{i}") for i in range(12)]
    # B gets word 3 and words 7-8 through 0.5-s and 1-s turns inside A's speech
    turns = diarization((0.0, 1.45, "A"), (1.45, 1.95, "B"), (1.95, 3.45, "A"), (3.45, 4.45, "B"), (4.45, 7.0, "A"))
    labels = ["A"] * 3 + ["B"] + ["A"] * 3 + ["B", "B"] + ["A"] * 3
    assert speakers_of(assign_speakers(transcript(*words), turns, smoothing=None)) == labels

    default = assign_speakers(transcript(*words), turns)  # 7-8 last 0.9 s in a 1-s turn: a real turn
    assert speakers_of(default) == ["A"] * 7 + ["B", "B"] + ["A"] * 3
    assert default.smoothed_words == 1

    strict = assign_speakers(transcript(*words), turns, smoothing=Smoothing(min_turn_s=1.5))
    assert speakers_of(strict) == ["A"] * 12
    assert strict.smoothed_words == 3

    one_word = assign_speakers(transcript(*words), turns, smoothing=Smoothing(max_words=1, min_turn_s=1.5))
    assert one_word.smoothed_words == 1
