from autorag_dagster.core.topics.answers import (
    fallback_summary,
    fallback_title,
    repair_text,
    subject_change_problems,
    suspect_names,
    text_problems,
    unknown_speakers,
)
from autorag_dagster.core.topics.buckets import Line, tokens
from autorag_dagster.core.topics.lexical import TfIdf

SOURCE = "the ferry from Marlowe harbour leaves at dawn. NASA said the tide and the wind allow it"
VOCAB = set(tokens(SOURCE))
LINES = [
    Line(61.0, 75.0, "Speaker 2", "the ferry from Marlowe harbour leaves at dawn. When the tide allows"),
    Line(75.5, 80.0, "Speaker 1", "and the wind"),
]


def test_subject_changes_must_be_listed_once_in_order():
    assert subject_change_problems([1, 3, 4]) == [] and subject_change_problems([]) == []
    assert subject_change_problems([3, 1]) == ["the numbers [3, 1] are not listed once each in increasing order"]
    assert subject_change_problems([2, 2]) == ["the numbers [2, 2] are not listed once each in increasing order"]


def test_suspect_names_are_capitalised_words_missing_from_the_transcript():
    assert suspect_names("Ferry times from Marlowe harbour", VOCAB) == []
    assert suspect_names("Ferry times from Marlow harbour", VOCAB) == ["Marlow"]
    assert suspect_names("Speaker 2 explains how NASA and OpenAI see the tide", VOCAB) == ["OpenAI"]
    # a capital that starts a sentence is not a name; after a colon neither
    assert suspect_names("Dawn departures. Tides decide: Wind matters", VOCAB) == []
    assert suspect_names("The crossing to Brest", VOCAB) == ["Brest"]


def test_unknown_speakers():
    assert unknown_speakers("Speaker 1 asks and Speaker 3 answers", ["Speaker 1", "Speaker 2"]) == ["Speaker 3"]
    assert unknown_speakers("Speaker 2 answers", ["Speaker 2"]) == []


def test_text_problems_lists_each_kind():
    assert text_problems("Ferry at dawn", "Speaker 2 describes the ferry.", VOCAB, ["Speaker 2"]) == []
    problems = text_problems("", "Speaker 4 describes the ferry to Brest.", VOCAB, ["Speaker 1", "Speaker 2"])
    assert problems == [
        "the title is empty",
        "these names do not occur in the transcript: Brest",
        "Speaker 4 do not speak in this part; the speakers are Speaker 1, Speaker 2",
    ]


FALLBACK = ("Fallback title", "Fallback summary.")
SPEAKERS = ["Speaker 1", "Speaker 2"]


def test_repair_strips_invented_names_from_titles():
    assert repair_text(
        "Ferry from Brest harbour at dawn", "Speaker 2 describes the ferry.", VOCAB, SPEAKERS, FALLBACK
    ) == ("Ferry from harbour at dawn", "Speaker 2 describes the ferry.")
    # too little left: the fallback title
    assert repair_text("Brest", "The ferry.", VOCAB, SPEAKERS, FALLBACK)[0] == "Fallback title"
    assert (
        repair_text("Speaker 3 and Jonathan's ferry crossing", "x.", VOCAB, SPEAKERS, FALLBACK)[0] == "Ferry crossing"
    )


def test_repair_finds_a_title_initial_name_through_the_summary():
    # "Ahab" starts the title, where a capital proves nothing, but the summary gives it away
    title, summary = repair_text(
        "Ahab and the ferry crossing", "Speaker 1 sails with Ahab. The tide decides.", VOCAB, SPEAKERS, FALLBACK
    )
    assert (title, summary) == ("Ferry crossing", "The tide decides.")


def test_repair_drops_the_sentences_that_invent():
    summary = "Speaker 2 describes the ferry. Captain Ahab steers it! Speaker 5 asks about the wind."
    assert repair_text("Ferry at dawn", summary, VOCAB, SPEAKERS, FALLBACK)[1] == "Speaker 2 describes the ferry."
    assert repair_text("Ferry at dawn", "Captain Ahab steers.", VOCAB, SPEAKERS, FALLBACK)[1] == "Fallback summary."
    assert repair_text("", "", VOCAB, SPEAKERS, FALLBACK) == FALLBACK


def test_fallbacks_are_never_empty_and_never_the_first_words():
    text = " ".join(ln.text for ln in LINES)
    title = fallback_title(text, text + " The robot arm sorts parcels.")
    assert not title.lower().startswith("the ferry from")
    assert {"ferry", "harbour", "marlowe", "dawn"} & set(title.lower().split()), title
    summary = fallback_summary(LINES, TfIdf([ln.text for ln in LINES]))
    assert summary == "When the tide allows and the wind."  # the sentence after the opening one, across lines
    assert fallback_title("", "") == "No speech"
    assert fallback_summary([], TfIdf([])).strip()
