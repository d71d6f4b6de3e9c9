"""Names suggested by introductions and by being addressed, on constructed transcripts."""

import pytest

from autorag_dagster.core.name_suggestions import name_in, suggest_names
from autorag_dagster.core.types import SpeakerTranscript, SpeakerWord, Utterance
from autorag_dagster.defs.metadata import name_suggestions_table


def spoken(*lines: tuple[str, str]) -> SpeakerTranscript:
    """One utterance per (speaker, text) line, 0.5 s per word, 1 s between utterances."""
    utterances, cursor = [], 0.0
    for speaker, text in lines:
        words = []
        for token in text.split():
            words.append(SpeakerWord(start=cursor, end=cursor + 0.4, text=f" {token}", speaker=speaker))
            cursor += 0.5
        utterances.append(Utterance(speaker=speaker, start=words[0].start, end=words[-1].end, text=text, words=words))
        cursor += 1.0
    return SpeakerTranscript(key="talk.wav", duration_s=cursor, language="en", utterances=utterances)


def names(*lines: tuple[str, str]) -> list[tuple[str, str]]:
    return [(s.speaker, s.name) for s in suggest_names(spoken(*lines))]


@pytest.mark.parametrize(
    "text",
    [
        "Hello, I'm Ana. Welcome to the show.",
        "Hi everyone, I am Ana and I run the garden.",
        "Good morning. My name is Ana.",
        "My name's Ana, nice to meet you.",
        "Hello, this is Ana speaking.",
        "Hi, this is Ana here from the library.",
        "Ana here. Let's begin.",
        "Hello, Ana here, with the news.",
        "You can call me Ana.",
    ],
)
def test_an_introduction_names_its_speaker(text):
    assert names(("SPEAKER_00", "Good evening."), ("SPEAKER_01", text), ("SPEAKER_00", "Welcome.")) == [
        ("SPEAKER_01", "Ana")
    ]


def test_two_word_names_and_names_that_are_also_common_words():
    assert names(("A", "Hello, I'm Ana Lopez and this is my show.")) == [("A", "Ana Lopez")]
    assert names(("A", "Hi, I'm Will. Thanks for coming.")) == [("A", "Will")]
    assert names(("A", "I'm Ana and I agree.")) == [("A", "Ana")]
    assert names(("A", "Good morning, I'm Dr. Lee.")) == [("A", "Dr. Lee")]
    assert names(("A", "I'm Dr. Lee"), ("B", "Thank you, Mrs Ana Lopez.")) == [("A", "Dr. Lee"), ("A", "Mrs Ana Lopez")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("That is my plan. Ben, what do you think?", "B"),
        ("That is my plan. What do you think, Ben?", "B"),
        ("That is all from me. Over to you, Ben.", "B"),
        ("So that is the budget. Go ahead, Ben.", "B"),
        ("Welcome to the show. Thank you, Ben, for joining us.", "B"),
        ("Before we start I want to say thanks Ben for the cake.", "B"),
    ],
)
def test_being_addressed_names_the_next_speaker(text, expected):
    lines = [("A", "Good morning."), ("C", text), ("C", "and more"), (expected, "Happy to be here.")]
    assert names(*lines) == [(expected, "Ben")]


def test_thanks_at_the_opening_name_the_previous_speaker():
    lines = [("A", "We planted forty trees."), ("B", "Thanks, Ben. That is great news."), ("A", "It was fun.")]
    assert names(*lines) == [("A", "Ben")]
    # with no one before, the thanks go to whoever speaks next
    assert names(("B", "Thank you Ben."), ("A", "My pleasure.")) == [("A", "Ben")]


def test_addressing_with_no_one_to_answer_suggests_nothing():
    assert names(("A", "Good morning."), ("B", "Ben, what do you think?")) == []


@pytest.mark.parametrize(
    "text",
    [
        "I'm sure we can do it.",
        "I'm not convinced.",
        "I'm going to start now.",
        "I'm Sure we can do it.",
        "I'm Going to start.",
        "I am Not sure.",
        "I'm Canadian, actually.",
        "Thanks, everyone.",
        "Thanks, Everyone.",
        "Thank you all for coming.",
        "Thank you All.",
        "Thank you very much.",
        "Thank you so much, guys.",
        "Okay, what do you think?",
        "So, what do you think?",
        "Right, how do we do it?",
        "Everyone here? Good.",
        "Here is my name. It is on the list.",
        "My name is on the list.",
        "This is the place here.",
        "I'M ANA AND THIS IS MY SHOW.",
        "I'm 42 years old.",
        "I'm Ana's sister.",
    ],
)
def test_common_words_are_not_names(text):
    assert names(("A", "Good morning."), ("B", text), ("A", "Yes.")) == []


def test_evidence_has_the_time_and_words_and_is_in_time_order():
    st = spoken(
        ("SPEAKER_00", "Hello, I'm Ana. Welcome to the garden meeting."),
        ("SPEAKER_01", "Thanks, Ana. My name is Tom and I look after the trees."),
        ("SPEAKER_00", "Great. Tom, how many trees did you plant?"),
        ("SPEAKER_01", "Forty."),
    )
    found = suggest_names(st)
    assert [(s.speaker, s.name, s.kind) for s in found] == [
        ("SPEAKER_00", "Ana", "introduction"),
        ("SPEAKER_00", "Ana", "addressed"),
        ("SPEAKER_01", "Tom", "introduction"),
        ("SPEAKER_01", "Tom", "addressed"),
    ]
    ana = found[0]
    assert ana.time == pytest.approx(1.0)  # "Ana." is the third word, 0.5 s per word
    assert ana.words == "Hello, I'm Ana. Welcome to the"
    assert found[2].words == "Thanks, Ana. My name is Tom and I look"
    assert all(0 <= s.time <= st.duration_s for s in found)

    st.name_suggestions = found
    grouped = st.suggestions_by_speaker()
    assert {speaker: [s.name for s in group] for speaker, group in grouped.items()} == {
        "SPEAKER_00": ["Ana", "Ana"],
        "SPEAKER_01": ["Tom", "Tom"],
    }
    assert SpeakerTranscript.model_validate_json(st.model_dump_json()).name_suggestions == found


def test_unknown_speakers_get_no_suggestions():
    assert names(("UNKNOWN", "Hello, I'm Ana."), ("A", "Hi.")) == []
    assert names(("A", "Over to you, Ben."), ("UNKNOWN", "Hello.")) == []


def test_name_in_takes_one_or_two_capitalised_words():
    assert name_in("Ana Lopez") == "Ana Lopez"
    assert name_in("Ana and") == "Ana"
    assert name_in("Sure thing") is None
    assert name_in("ana") is None
    assert name_in("O'Neil") == "O'Neil"
    assert name_in("Ana- Lopez") == "Ana Lopez"


def test_the_metadata_table_escapes_markdown():
    st = spoken(("SPEAKER_00", "Hi | *all*, I'm Ana [ok]"))
    table = name_suggestions_table(suggest_names(st)).value
    lines = table.splitlines()
    assert lines[0] == "| speaker | suggested name | time | words |"
    assert len(lines) == 3 and lines[2].count(" | ") == 3
    assert r"SPEAKER\_00" in lines[2] and r"\*all\*" in lines[2] and r"\[ok\]" in lines[2]
    assert name_suggestions_table([]).value == "(none)"
