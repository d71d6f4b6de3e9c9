"""Titles and summaries that name the subject: grounding, prompt echo, first words, and the fallbacks."""

from autorag_dagster.core.topics.answers import (
    echo_problems,
    fallback_summary,
    fallback_title,
    grounded,
    naming_problems,
    summary_problems,
    title_problems,
)
from autorag_dagster.core.topics.buckets import Line
from autorag_dagster.core.topics.lexical import (
    TfIdf,
    content_terms,
    key_phrase,
    sentences,
    stem,
)
from autorag_dagster.core.topics.prompts import summary_scaffold

SPAN = (
    "Good. Now the budget. We spent eight thousand dollars of the twelve thousand we planned for this year. "
    "The largest cost was the new irrigation pipes. So we have four thousand dollars left for the budget."
)
FILE = SPAN + " Finally, the summer festival. The bakery offered free bread for the festival in the park."


def test_stems_meet_across_inflections():
    assert stem("trees") == stem("tree") and stem("planted") == stem("plant") and stem("parties") == stem("party")
    assert stem("running") == "run" and stem("class") == "class" and stem("Budget's") == "budget"
    assert content_terms("The budgets were planned") == [stem("budget"), stem("plan")]


def test_grounded_titles_take_most_of_their_words_from_their_span():
    assert grounded("Budget for the year", SPAN)
    assert grounded("Irrigation pipe costs", SPAN)  # pipes ~ pipe, cost
    assert grounded("Budget review", SPAN)  # half of its words
    assert not grounded("Library roof repairs", SPAN)
    assert not grounded("Budget, economy and jobs", SPAN)
    assert not grounded("The and of", SPAN)


def test_titles_that_echo_the_prompt_or_copy_the_first_words_are_rejected():
    assert title_problems("Budget for the year", SPAN) == []
    assert "the title copies the first words of the transcript instead of naming the subject" in title_problems(
        "Good now the budget", SPAN
    )
    assert any("label of the prompt" in p for p in title_problems("Part: budget", SPAN))
    assert any("timestamp" in p for p in title_problems("Budget 00:12-01:40", SPAN))
    assert any("not from the transcript" in p for p in title_problems("Library roof repairs", SPAN))
    assert any("not from the transcript" in p for p in title_problems("Budget, economy and jobs", SPAN))
    assert any("a sentence" in p for p in title_problems("We plan the budget", SPAN))
    assert title_problems("", SPAN) == ["the title is empty"]
    assert title_problems("Budget pipes budget dollars", SPAN) == ["the title repeats its words: name the subject once"]
    assert any("heading" in p for p in echo_problems("Speaker 1 at 00:00 talks", "summary"))
    assert any("label of the prompt" in p for p in echo_problems("speakers: Speaker 1, Speaker 2", "summary"))
    assert any("instructions" in p for p in echo_problems("Two to six words in sentence case", "title"))
    # the worked example's words, not the part's
    scaffold = summary_scaffold()
    assert any("example" in p for p in title_problems("Budget and roof repairs", SPAN + " repairs roof", scaffold))
    assert title_problems("Budget for the year", SPAN, scaffold) == []


def test_summaries_that_copy_the_opening_or_echo_are_rejected():
    assert summary_problems("Speaker 1 reports that four thousand dollars of the budget are left.", SPAN) == []
    assert summary_problems("Good. Now the budget. We spent eight thousand", SPAN) == [
        "the summary copies the first words of the transcript"
    ]
    assert summary_problems("Speaker 2 at 01:01: the budget", SPAN)
    # the worked example's form with the part's own subject is not an echo; its subject is
    scaffold = summary_scaffold()
    assert summary_problems("Speaker 1 says the budget has four thousand dollars left.", SPAN, scaffold) == []
    assert summary_problems("The speaker talks about the budget and the irrigation pipes.", SPAN, scaffold) == []
    assert summary_problems("Speaker 1 says the library closes in June for the budget.", SPAN, scaffold) == [
        "the summary repeats the instructions or the example"
    ]
    titles, summaries = naming_problems("Budget", "The budget.", SPAN)
    assert titles == [] and summaries == []


def test_fallback_title_is_a_key_phrase_with_a_subject_word_not_the_first_words():
    title = fallback_title(SPAN, FILE)
    assert title.lower().startswith("budget"), title  # announced: "Now the budget."
    assert 1 <= len(title.split()) <= 5
    assert {"budget", "thousand", "dollar"} & set(content_terms(title)), title
    assert not title.lower().startswith("good now")
    assert title_problems(title, SPAN) == []
    assert fallback_title("", FILE) == "No speech"
    festival = key_phrase("Finally, the summer festival. The bakery offered free bread for the festival.", FILE)
    assert "festival" in festival.lower()


def test_fallback_summary_is_a_central_sentence_of_the_span_not_its_first():
    lines = [
        Line(
            48.0,
            56.0,
            "Speaker 1",
            "Good. Now the budget. We spent eight thousand dollars of the twelve thousand we planned.",
        ),
        Line(56.4, 64.0, "Speaker 2", "The largest cost was the new irrigation pipes."),
        Line(64.6, 72.0, "Speaker 1", "So we have four thousand dollars left in the budget."),
    ]
    tfidf = TfIdf([ln.text for ln in lines] + ["Finally, the summer festival in the park."])
    summary = fallback_summary(lines, tfidf)
    spoken = [s for ln in lines for s in sentences(ln.text)]
    assert summary and all(part in spoken for part in sentences(summary)), summary
    assert not summary.startswith("Good")
    assert summary_problems(summary, " ".join(ln.text for ln in lines)) == []
    assert fallback_summary([], tfidf).strip()
