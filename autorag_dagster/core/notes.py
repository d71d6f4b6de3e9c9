"""A Markdown note per recording, for people who keep notes in plain files.

The note holds the recording's title, its summary, the outline with timestamps (and each
topic's summary), the speakers with their talk time, and key quotes (per chapter, the longest
thing said in it). Text from speech recognition and the LLM is escaped, so it always reads as
the words that were said: never as a link, emphasis, a heading, HTML or a table cell break.
"""

from __future__ import annotations

import re
from pathlib import Path

from autorag_dagster.core.atomic import write_text
from autorag_dagster.core.timefmt import clock
from autorag_dagster.core.types import SpeakerTranscript, TopicTree, Utterance

MAX_QUOTES = 5
QUOTE_CHARS = 240

# ASCII punctuation that means something inline in CommonMark or GitHub's Markdown.
# An underscore between two letters or digits never opens or closes emphasis: left as it is.
_INLINE = re.compile(r"([\\`*\[\]<>|~&!{}()]|(?<!\w)_|_(?!\w))")
# What means something at the start of a line: headings, lists, quotes, rules, setext underlines.
_LINE_START = re.compile(r"^([#>+=-])")
_ORDERED = re.compile(r"^(\d+)([.)])")


def md(text: str) -> str:
    """``text`` on one line with Markdown's syntax escaped, so it renders as itself."""
    text = _INLINE.sub(r"\\\1", re.sub(r"\s+", " ", text).strip())
    return _ORDERED.sub(r"\1\\\2", _LINE_START.sub(r"\\\1", text))


def _shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def key_quotes(transcript: SpeakerTranscript, tree: TopicTree, limit: int = MAX_QUOTES) -> list[Utterance]:
    """Per chapter, the utterance with the most words that starts in it; the longest first when
    there are more chapters than ``limit``; returned in time order."""
    best: list[Utterance] = []
    spans = [(n.start, n.end) for n in tree.nodes] or [(0.0, float("inf"))]
    for start, end in spans:
        inside = [u for u in transcript.utterances if start <= u.start < end and u.text.strip()]
        if inside:
            best.append(max(inside, key=lambda u: (len(u.text.split()), -u.start)))
    best = sorted(best, key=lambda u: len(u.text.split()), reverse=True)[:limit]
    return sorted(best, key=lambda u: u.start)


def render_note(transcript: SpeakerTranscript, tree: TopicTree) -> str:
    duration = max(tree.duration_s, transcript.duration_s)
    title = tree.title or Path(tree.key).stem
    lines = [f"# {md(title)}", ""]
    facts = [f"File: {md(tree.key)}", f"Duration: {clock(duration)}"]
    if transcript.language:
        facts.append(f"Language: {md(transcript.language)}")
    lines += [" · ".join(facts), ""]

    lines += ["## Summary", "", md(tree.summary) if tree.summary.strip() else "No summary.", ""]

    lines += ["## Outline", ""]
    if tree.nodes:
        for node in tree.walk():
            indent = "  " * (node.level - 1)
            entry = f"{indent}- {clock(node.start)}–{clock(node.end)} **{md(node.title or '(untitled)')}**"
            if node.summary.strip():
                entry += f": {md(node.summary)}"
            lines.append(entry)
    else:
        lines.append("No topics.")
    lines.append("")

    lines += ["## Speakers", ""]
    talk = transcript.talk_time()
    if talk:
        lines += ["| Speaker | Talk time | Share |", "| --- | ---: | ---: |"]
        for speaker, seconds in sorted(talk.items(), key=lambda item: -item[1]):
            share = 100 * seconds / duration if duration else 0.0
            lines.append(f"| {md(speaker)} | {clock(seconds)} | {share:.0f} % |")
    else:
        lines.append("No speech.")
    lines.append("")

    lines += ["## Key quotes", ""]
    quotes = key_quotes(transcript, tree)
    for quote in quotes:
        lines += [f"> {md(_shorten(quote.text))}", ">", f"> — {md(quote.speaker)}, {clock(quote.start)}", ""]
    if not quotes:
        lines += ["No quotes.", ""]
    return "\n".join(lines)


def write_note(transcript: SpeakerTranscript, tree: TopicTree, path: Path | str) -> Path:
    """(Re)write the note of one recording at ``path``."""
    return write_text(Path(path), render_note(transcript, tree))
