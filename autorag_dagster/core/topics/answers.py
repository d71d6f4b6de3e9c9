"""Judge schema-valid answers for sense, clean them up, or write a safe fallback.

A schema only guarantees shape. Here: boundary answers must be strictly increasing line
numbers in range; titles and summaries must not introduce names that never occur in the
transcript (small models "correct" ASR spellings into invented proper nouns) and must only use
speaker labels that speak in that part (the usual way summaries mix speakers up).
"""

from __future__ import annotations

import re

from autorag_dagster.core.topics.buckets import ELLIPSIS, Line, fmt_time, tokens

_SPEAKER = re.compile(r"\bSpeaker\s+(\d+)\b")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;]\s*[\"'”’)]*\s*$")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_CONNECTORS = {"and", "or", "with", "of", "from", "to", "by", "for", "the", "a", "an", "&", "-", "vs"}


def boundary_problems(first_lines: list[int], n_lines: int) -> list[str]:
    """Why a list of topic start lines makes no sense (empty list: it does)."""
    problems = []
    if not first_lines:
        problems.append("the list of topics is empty")
    bad = [n for n in first_lines if not 1 <= n <= n_lines]
    if bad:
        problems.append(f"line numbers {bad} are outside 1..{n_lines}")
    if any(b <= a for a, b in zip(first_lines, first_lines[1:])):
        problems.append(f"line numbers {first_lines} are not strictly increasing")
    return problems


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
        name_like = len(word) > 1 and (
            (word[0].isupper() and not sentence_start) or any(c.isupper() for c in word[1:])
        )
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
    pattern = re.compile("|".join([*(rf"\b{re.escape(n)}(?:['’]s)?\b" for n in names), *map(re.escape, foreign)]) or "(?!)")

    words = re.sub(r"\s+", " ", pattern.sub("", title)).strip(" ,;:-–—&/").split()
    while words and words[0].lower() in _CONNECTORS:
        words.pop(0)
    while words and words[-1].lower() in _CONNECTORS:
        words.pop()
    title = words[0][:1].upper() + " ".join(words)[1:] if len(words) >= 2 else fallback[0]

    kept = [s for s in _SENTENCES.split(summary.strip()) if s and not pattern.search(s)]
    return title, " ".join(kept) if kept else fallback[1]


def fallback_title(lines: list[Line], max_words: int = 7) -> str:
    """The first words of the part, or a plain statement that nobody speaks in it."""
    words = " ".join(ln.text for ln in lines).split()
    if not words:
        return "No speech"
    title = " ".join(words[:max_words]).rstrip(".,;:!?")
    return (title[0].upper() + title[1:]) + (ELLIPSIS if len(words) > max_words else "")


def fallback_summary(lines: list[Line], max_words: int = 40) -> str:
    """The first sentence of the part, attributed to its speaker."""
    if not lines:
        return "No speech was transcribed in this part."
    first = lines[0]
    text = " ".join(ln.text for ln in lines if ln.speaker == first.speaker)
    sentence = _SENTENCES.split(text.strip(), maxsplit=1)[0].split()
    quoted = " ".join(sentence[:max_words]) + (ELLIPSIS if len(sentence) > max_words else "")
    return f"{first.speaker} at {fmt_time(first.start)}: \u201c{quoted}\u201d"
