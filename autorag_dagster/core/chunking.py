"""Cut a speaker transcript and a topic tree into records worth embedding.

Two kinds of record come out:

* ``chunk``: consecutive utterances packed up to ``max_chars`` characters of speaker-labelled
  lines (``SPEAKER_00: words ...``). Cuts fall on utterance boundaries; an utterance longer than
  the budget is split at word boundaries. Each chunk after the first repeats the tail of the
  previous one (whole trailing pieces, or the last words of a long one) up to ``overlap_chars``,
  so a sentence on a cut is still found in one piece.
* ``topic``: one per topic node, its title and summary, with the node's span, level and path.

Every record carries its start/end seconds and the speakers heard in that span. A chunk also
names the deepest topic node that covers its midpoint, so a search hit can say where it sits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree, Utterance

DEFAULT_MAX_CHARS = 800
DEFAULT_OVERLAP_CHARS = 120


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


def _split_utterance(index: int, utterance: Utterance, max_chars: int, overlap_chars: int) -> list[_Piece]:
    """The utterance as one piece if its labelled line fits in ``max_chars``; else pieces of at
    most ``max_chars - overlap_chars``, leaving room for the overlap that precedes each."""
    speaker = utterance.speaker
    words = _timed_words(utterance)
    length = len(speaker) + 2
    whole = length + sum(len(w.text) + 1 for w in words) - 1
    limit = max_chars if whole <= max_chars else max_chars - overlap_chars
    pieces: list[_Piece] = []
    current: list[_TimedWord] = []
    for word in words:
        extra = len(word.text) + (1 if current else 0)
        if current and length + extra > limit:
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
) -> list[Record]:
    """Pack the utterances into overlapping chunks of at most ``max_chars`` characters."""
    if max_chars < 40:
        raise ValueError(f"max_chars={max_chars} is too small for a labelled line; use at least 40")
    if not 0 <= overlap_chars < max_chars // 2:
        raise ValueError(f"overlap_chars={overlap_chars} must be >= 0 and below half of max_chars={max_chars}")

    utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.end))
    pieces = [piece for i, u in enumerate(utterances) for piece in _split_utterance(i, u, max_chars, overlap_chars)]
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    carried = 0  # how many leading pieces of ``current`` repeat the previous chunk
    for piece in pieces:
        if current and _joined_len(current, piece) > max_chars:
            if len(current) > carried:
                groups.append(current)
                current = _tail(current, overlap_chars)
            if _joined_len(current, piece) > max_chars:
                current = []  # the overlap alone would not leave room for the next piece
            carried = len(current)
        current.append(piece)
    if len(current) > carried:
        groups.append(current)

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
) -> list[Record]:
    """Every record of one file: its transcript chunks, then its topic nodes."""
    chunks = chunk_transcript(transcript, tree, max_chars=max_chars, overlap_chars=overlap_chars)
    return chunks + (topic_records(tree, transcript) if tree is not None else [])
