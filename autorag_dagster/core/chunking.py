"""Cut a speaker transcript and a topic tree into records worth embedding.

Two kinds of record come out:

* ``chunk``: consecutive utterances of one topic section packed into speaker-labelled lines
  (``SPEAKER_00: words ...``). A section is the span of a level-1 topic, or of a level-2 topic
  inside it: no chunk straddles a section boundary (an utterance that crosses one is split there
  by its word times), so a chunk cited as an answer's source holds one subject. Within a section
  the chunks aim at 15-30 s of speech: the section is cut into as few chunks as keep each within
  ``max_seconds`` (30 s) and ``max_chars``, of about equal length. Cuts fall on utterance
  boundaries; an utterance longer than the budget is split at word boundaries. Each chunk after
  the first of a section repeats the tail of the previous one (whole trailing pieces, or the
  last words of a long one) up to ``overlap_chars``, so a sentence on a cut is still found in
  one piece.
* ``topic``: one per topic node, its title and summary, with the node's span, level and path.

Every record carries its start/end seconds and the speakers heard in that span. A chunk also
names the deepest topic node that covers its midpoint, so a search hit can say where it sits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree, Utterance

DEFAULT_MAX_CHARS = 800
DEFAULT_OVERLAP_CHARS = 120
DEFAULT_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Record:
    """One row-to-be of the segment store, before it has a vector."""

    kind: Literal["chunk", "topic"]
    start: float
    end: float
    speakers: tuple[str, ...]
    text: str
    level: int = 0
    path: str = ""
    title: str = ""
    summary: str = ""


@dataclass(frozen=True)
class _TimedWord:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class _Piece:
    """A run of one speaker's words: a whole utterance or a part of a long one."""

    utterance: int  # index of the utterance it comes from
    speaker: str
    words: tuple[_TimedWord, ...]

    @property
    def line(self) -> str:
        return f"{self.speaker}: " + " ".join(w.text for w in self.words)

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end


def _timed_words(utterance: Utterance) -> list[_TimedWord]:
    """The utterance's words with times; spread evenly over its span when it has no word times."""
    words = [_TimedWord(w.text.strip(), w.start, w.end) for w in utterance.words if w.text.strip()]
    if words:
        return words
    tokens = utterance.text.split()
    step = (utterance.end - utterance.start) / max(len(tokens), 1)
    return [
        _TimedWord(token, utterance.start + i * step, utterance.start + (i + 1) * step)
        for i, token in enumerate(tokens)
    ]


def _split_words(
    index: int, speaker: str, words: Sequence[_TimedWord], max_chars: int, overlap_chars: int, max_seconds: float
) -> list[_Piece]:
    """The words as one piece if their labelled line fits in ``max_chars`` and ``max_seconds``;
    else pieces of at most ``max_chars - overlap_chars``, leaving room for the overlap that
    precedes each, and at most ``max_seconds`` long."""
    if not words:
        return []
    length = len(speaker) + 2
    whole = length + sum(len(w.text) + 1 for w in words) - 1
    limit = max_chars if whole <= max_chars else max_chars - overlap_chars
    pieces: list[_Piece] = []
    current: list[_TimedWord] = []
    for word in words:
        extra = len(word.text) + (1 if current else 0)
        if current and (length + extra > limit or word.end - current[0].start > max_seconds):
            pieces.append(_Piece(index, speaker, tuple(current)))
            current, length, extra = [], len(speaker) + 2, len(word.text)
        current.append(word)
        length += extra
    if current:
        pieces.append(_Piece(index, speaker, tuple(current)))
    return pieces


def _tail(pieces: Sequence[_Piece], overlap_chars: int) -> list[_Piece]:
    """The end of a chunk to repeat at the start of the next: whole pieces, else the last words."""
    tail: list[_Piece] = []
    used = 0
    for piece in reversed(pieces):
        size = len(piece.line) + 1
        if used + size > overlap_chars:
            break
        tail.insert(0, piece)
        used += size
    if tail or not pieces or overlap_chars <= 0:
        return tail
    last = pieces[-1]
    words: list[_TimedWord] = []
    used = len(last.speaker) + 2
    for word in reversed(last.words):
        used += len(word.text) + 1
        if used > overlap_chars:
            break
        words.insert(0, word)
    return [_Piece(last.utterance, last.speaker, tuple(words))] if words else []


def _rejoin(pieces: Sequence[_Piece]) -> list[_Piece]:
    """Consecutive pieces of one utterance (an overlap tail and what follows it) as one line."""
    out: list[_Piece] = []
    for piece in pieces:
        if out and out[-1].utterance == piece.utterance:
            out[-1] = _Piece(piece.utterance, piece.speaker, out[-1].words + piece.words)
        else:
            out.append(piece)
    return out


def _joined_len(pieces: Sequence[_Piece], piece: _Piece) -> int:
    return sum(len(p.line) + 1 for p in pieces) + len(piece.line)


def _speakers_between(transcript: SpeakerTranscript, start: float, end: float) -> tuple[str, ...]:
    return tuple(sorted({u.speaker for u in transcript.utterances if u.start < end and u.end > start}))


def _section_bounds(tree: TopicTree | None) -> list[float]:
    """The inner boundaries between sections: where a level-1 or level-2 topic starts or ends."""
    if tree is None:
        return []
    edges = {t for node in tree.walk() if node.level <= 2 for t in (node.start, node.end)}
    return sorted(edges)


def _section_of(bounds: Sequence[float], at: float) -> int:
    return sum(1 for b in bounds if b <= at)


def _sectioned_pieces(
    utterances: Sequence[Utterance], bounds: Sequence[float], max_chars: int, overlap_chars: int, max_seconds: float
) -> list[tuple[int, list[_Piece]]]:
    """The pieces of each section, in order: (section index, pieces). A word belongs to the
    section its midpoint lies in, so an utterance crossing a boundary is split there."""
    sections: list[tuple[int, list[_Piece]]] = []
    for index, utterance in enumerate(utterances):
        runs: list[tuple[int, list[_TimedWord]]] = []
        for word in _timed_words(utterance):
            section = _section_of(bounds, (word.start + word.end) / 2)
            if runs and runs[-1][0] == section:
                runs[-1][1].append(word)
            else:
                runs.append((section, [word]))
        for section, words in runs:
            pieces = _split_words(index, utterance.speaker, words, max_chars, overlap_chars, max_seconds)
            if sections and sections[-1][0] == section:
                sections[-1][1].extend(pieces)
            else:
                sections.append((section, pieces))
    return sections


def _pack(pieces: Sequence[_Piece], max_chars: int, overlap_chars: int, max_seconds: float) -> list[list[_Piece]]:
    """One section's pieces as chunks: as few as keep each within ``max_chars`` and
    ``max_seconds``, each cut once it reaches the section's length shared out between them."""
    if not pieces:
        return []
    span = pieces[-1].end - pieces[0].start
    target = span / max(1, math.ceil(span / max_seconds))
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    carried = 0  # how many leading pieces of ``current`` repeat the previous chunk

    def too_long(group: list[_Piece], piece: _Piece) -> bool:
        return _joined_len(group, piece) > max_chars or piece.end - group[0].start > max_seconds

    for piece in pieces:
        own = current[carried:]
        full = bool(own) and own[-1].end - own[0].start >= target
        if current and (too_long(current, piece) or full):
            if len(current) > carried:
                groups.append(current)
                current = _tail(current, overlap_chars)
            if current and too_long(current, piece):
                current = []  # the overlap alone would not leave room for the next piece
            carried = len(current)
        current.append(piece)
    if len(current) > carried:
        groups.append(current)
    return groups


def _deepest_node(tree: TopicTree | None, at: float) -> TopicNode | None:
    found = None
    nodes = tree.nodes if tree else []
    while nodes:
        node = next((n for n in nodes if n.start <= at < n.end), None)
        if node is None:
            break
        found, nodes = node, node.children
    return found


def chunk_transcript(
    transcript: SpeakerTranscript,
    tree: TopicTree | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> list[Record]:
    """Pack each topic section's utterances into overlapping chunks (see the module docstring)."""
    if max_chars < 40:
        raise ValueError(f"max_chars={max_chars} is too small for a labelled line; use at least 40")
    if not 0 <= overlap_chars < max_chars // 2:
        raise ValueError(f"overlap_chars={overlap_chars} must be >= 0 and below half of max_chars={max_chars}")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds={max_seconds} must be positive")

    utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.end))
    sections = _sectioned_pieces(utterances, _section_bounds(tree), max_chars, overlap_chars, max_seconds)
    groups = [group for _, pieces in sections for group in _pack(pieces, max_chars, overlap_chars, max_seconds)]

    records = []
    for group in groups:
        start, end = group[0].start, max(p.end for p in group)
        node = _deepest_node(tree, (start + end) / 2)
        records.append(
            Record(
                kind="chunk",
                start=start,
                end=end,
                speakers=tuple(sorted({p.speaker for p in group})),
                text="\n".join(p.line for p in _rejoin(group)),
                path=node.id if node else "",
                title=node.title if node else "",
            )
        )
    return records


def topic_records(tree: TopicTree, transcript: SpeakerTranscript | None = None) -> list[Record]:
    """One record per topic node: its title and summary as text, its span, level and path."""
    return [
        Record(
            kind="topic",
            start=node.start,
            end=node.end,
            speakers=_speakers_between(transcript, node.start, node.end) if transcript else (),
            text=". ".join(part for part in (node.title.strip(), node.summary.strip()) if part),
            level=node.level,
            path=node.id,
            title=node.title,
            summary=node.summary,
        )
        for node in tree.walk()
    ]


def build_records(
    transcript: SpeakerTranscript,
    tree: TopicTree | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> list[Record]:
    """Every record of one file: its transcript chunks, then its topic nodes."""
    chunks = chunk_transcript(
        transcript, tree, max_chars=max_chars, overlap_chars=overlap_chars, max_seconds=max_seconds
    )
    return chunks + (topic_records(tree, transcript) if tree is not None else [])
