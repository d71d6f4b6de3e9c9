"""Judge schema-valid answers for sense, clean them up, or write a safe fallback.

A schema only guarantees shape. Here: chosen candidates must be listed once each, in order;
titles must share a content word with their span, and neither titles nor summaries may repeat
the prompt's scaffolding or copy the span's first words; titles and summaries must not
introduce names that never occur in the transcript (small models "correct" ASR spellings into
invented proper nouns) and must only use speaker labels that speak in that part (the usual way
summaries mix speakers up). Fallbacks: the span's key phrase and its most central sentences.
"""

from __future__ import annotations

import re

from autorag_dagster.core.topics.buckets import Line, tokens
from autorag_dagster.core.topics.lexical import (
    TfIdf,
    central_sentences,
    content_terms,
    key_phrase,
    sentences,
)

_SPEAKER = re.compile(r"\bSpeaker\s+(\d+)\b")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;]\s*[\"'”’)]*\s*$")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_CONNECTORS = {"and", "or", "with", "of", "from", "to", "by", "for", "the", "a", "an", "&", "-", "vs"}


def suspect_names(text: str, vocabulary: set[str]) -> list[str]:
    """Name-like words in ``text`` that never occur in the transcript.

    Name-like: capitalised but not starting a sentence, or with a capital after the first
    letter (acronyms, CamelCase). ``Speaker`` labels and single letters are not names.
    """
    found: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group()
        before = text[: match.start()]
        sentence_start = not before.strip() or bool(_SENTENCE_END.search(before))
        name_like = len(word) > 1 and ((word[0].isupper() and not sentence_start) or any(c.isupper() for c in word[1:]))
        if not name_like or word == "Speaker" and _SPEAKER.match(text, match.start()):
            continue
        if not set(tokens(word)) <= vocabulary and word not in found:
            found.append(word)
    return found


def unknown_speakers(text: str, speakers: list[str]) -> list[str]:
    """``Speaker K`` labels in ``text`` that are not among ``speakers``."""
    return sorted({f"Speaker {k}" for k in _SPEAKER.findall(text)} - set(speakers))


def text_problems(title: str, summary: str, vocabulary: set[str], speakers: list[str]) -> list[str]:
    problems = []
    if not title.strip():
        problems.append("the title is empty")
    if not summary.strip():
        problems.append("the summary is empty")
    names = suspect_names(f"{title}. {summary}", vocabulary)
    if names:
        problems.append(f"these names do not occur in the transcript: {', '.join(names)}")
    strangers = unknown_speakers(f"{title}. {summary}", speakers)
    if strangers:
        problems.append(
            f"{', '.join(strangers)} do not speak in this part; the speakers are {', '.join(speakers) or 'none'}"
        )
    return problems


def repair_text(
    title: str, summary: str, vocabulary: set[str], speakers: list[str], fallback: tuple[str, str]
) -> tuple[str, str]:
    """Title and summary without invented names or absent speakers; ``fallback``'s parts where too little is left.

    A name found anywhere in the answer is removed everywhere, so a name that starts the title
    (where a capital proves nothing) goes too once the summary gives it away.
    """
    names = suspect_names(f"{title}. {summary}", vocabulary)
    foreign = unknown_speakers(f"{title}. {summary}", speakers)
    pattern = re.compile(
        "|".join([*(rf"\b{re.escape(n)}(?:['’]s)?\b" for n in names), *map(re.escape, foreign)]) or "(?!)"
    )

    words = re.sub(r"\s+", " ", pattern.sub("", title)).strip(" ,;:-–—&/").split()
    while words and words[0].lower() in _CONNECTORS:
        words.pop(0)
    while words and words[-1].lower() in _CONNECTORS:
        words.pop()
    title = words[0][:1].upper() + " ".join(words)[1:] if len(words) >= 2 else fallback[0]

    kept = [s for s in _SENTENCES.split(summary.strip()) if s and not pattern.search(s)]
    return title, " ".join(kept) if kept else fallback[1]


# --- titles and summaries that name the subject, never the prompt ---------------------------------

_SCAFFOLDING = [
    (
        re.compile(
            r"\b(?:part|section|sections|speakers?|transcript|outline|lines?|title|summary|answer|example|"
            r"candidates?|before|after)\s*:",
            re.I,
        ),
        "repeats a label of the prompt",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b"), "contains a timestamp"),
    (re.compile(r"\bspeaker\s+\d+\s+(?:at|from)\s+\d", re.I), "repeats a transcript line's heading"),
    (re.compile(r"^\s*\[\d+\]"), "starts with a line number"),
    (
        re.compile(
            r"\b(?:sentence case|two to six words|three to eight words|one or two sentences|speaker label|"
            r"exactly as written|json|schema|in your own words)\b",
            re.I,
        ),
        "repeats the instructions",
    ),
]


def echo_problems(text: str, what: str) -> list[str]:
    """Prompt scaffolding repeated in a title or summary: labels, timestamps, line headings, instructions."""
    return [f"the {what} {why}" for pattern, why in _SCAFFOLDING if pattern.search(text)]


def starts_like(text: str, span_text: str, n: int) -> bool:
    """Whether ``text`` begins with the first ``n`` words of ``span_text`` (fewer when it is shorter, at least 2)."""
    said = [w.lower() for w in _WORD.findall(text)]
    spoken = [w.lower() for w in _WORD.findall(span_text)]
    k = min(n, len(said))
    return k >= 2 and len(spoken) >= k and said[:k] == spoken[:k]


def grounded(text: str, span_text: str, share: float = 0.5) -> bool:
    """Whether at least one, and at least ``share``, of the content words (stemmed) of ``text`` occur
    in its span's transcript."""
    said = set(content_terms(text))
    shared = said & set(content_terms(span_text))
    return bool(shared) and len(shared) >= share * len(said)


_PRONOUN_START = re.compile(r"^\s*(?:i|we|you|they|he|she)\b(?!['’]s\b)", re.I)


MAX_TITLE_WORDS = 10


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    said = [w.lower() for w in _WORD.findall(text)]
    return {tuple(said[i : i + n]) for i in range(len(said) - n + 1)}


_REPORTING = frozenset(content_terms("speaker speakers talk talks say says said discuss mention explain ask describe"))
"""Words any summary may use to say who speaks about what: a pair of them ("the speaker talks")
follows the instructions' form without copying their content."""


def _term_pairs(text: str) -> set[tuple[str, str]]:
    terms = content_terms(text)
    return {(a, b) for a, b in zip(terms, terms[1:]) if not (a in _REPORTING and b in _REPORTING)}


def copies_prompt(text: str, scaffold: str, span_text: str, n: int) -> bool:
    """Whether ``text`` repeats ``n`` consecutive words of the prompt's own text (instructions, worked
    example), or two of its content words in a row ("roof repairs"), that the span's transcript
    does not contain. Two reporting words in a row ("the speaker talks about") are not a copy."""
    if not scaffold:
        return False
    if (_term_pairs(text) & _term_pairs(scaffold)) - _term_pairs(span_text):
        return True
    n = min(n, len(_WORD.findall(text)))
    if n < 3:
        return False
    return bool((_ngrams(text, n) & _ngrams(scaffold, n)) - _ngrams(span_text, n))


def title_problems(title: str, span_text: str, scaffold: str = "") -> list[str]:
    """Why a title does not name its span's subject (empty list: it may). ``scaffold``: the prompt
    without the transcript, whose wording (instructions, example) a title must not repeat."""
    problems = []
    if not title.strip():
        return ["the title is empty"]
    if not grounded(title, span_text):
        problems.append("the title's words are not from the transcript of its part")
    if starts_like(title, span_text, 3):
        problems.append("the title copies the first words of the transcript instead of naming the subject")
    if copies_prompt(title, scaffold, span_text, 3):
        problems.append("the title repeats the instructions or the example instead of naming the subject")
    terms = content_terms(title)
    if len(set(terms)) < len(terms):
        problems.append("the title repeats its words: name the subject once")
    if _PRONOUN_START.match(title):
        problems.append("the title is a sentence about the speakers: name the subject instead")
    elif len(_WORD.findall(title)) > MAX_TITLE_WORDS:
        problems.append(f"the title is a sentence, not a title: use at most {MAX_TITLE_WORDS} words naming the subject")
    return problems + echo_problems(title, "title")


def summary_problems(summary: str, span_text: str, scaffold: str = "") -> list[str]:
    if not summary.strip():
        return ["the summary is empty"]
    problems = []
    if not grounded(summary, span_text, share=0.0):
        problems.append("the summary's words are not from the transcript of its part")
    if starts_like(summary, span_text, 5):
        problems.append("the summary copies the first words of the transcript")
    if copies_prompt(summary, scaffold, span_text, 4):
        problems.append("the summary repeats the instructions or the example")
    return problems + echo_problems(summary, "summary")


def naming_problems(title: str, summary: str, span_text: str, scaffold: str = "") -> tuple[list[str], list[str]]:
    """(title problems, summary problems) of grounding, prompt echo and first-words copying."""
    return title_problems(title, span_text, scaffold), summary_problems(summary, span_text, scaffold)


def fallback_title(span_text: str, file_text: str) -> str:
    """The span's key phrase against the rest of the file; "No speech" for a span without words."""
    if not _WORD.search(span_text):
        return "No speech"
    return key_phrase(span_text, file_text) or "Brief exchange"


def fallback_file_title(span_texts: list[str], file_text: str, max_subjects: int = 4) -> str:
    """The key word of each chapter, joined: "Garden, budget and festival"."""
    heads: list[str] = []
    for text in span_texts:
        head = key_phrase(text, file_text, max_words=1).lower()
        if head and head not in heads:
            heads.append(head)
    heads = heads[:max_subjects]
    if not heads:
        return "No speech"
    joined = heads[0] if len(heads) == 1 else ", ".join(heads[:-1]) + " and " + heads[-1]
    return joined[:1].upper() + joined[1:]


def fallback_summary(lines: list[Line], tfidf: TfIdf) -> str:
    """The span's most central one or two sentences (by TF-IDF), quoted as spoken; never its opening sentence
    unless it has no other."""
    if not lines:
        return "No speech was transcribed in this part."
    spoken = sentences(" ".join(ln.text for ln in lines))
    later = spoken[1:] if len(spoken) > 1 else spoken
    picked = central_sentences(later, tfidf)
    text = " ".join(picked) or " ".join(spoken)[:300]
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def subject_change_problems(changes: list[int]) -> list[str]:
    """Chosen candidate numbers must be listed once each, in increasing order."""
    if any(b <= a for a, b in zip(changes, changes[1:])):
        return [f"the numbers {changes} are not listed once each in increasing order"]
    return []
