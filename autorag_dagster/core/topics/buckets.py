"""The time-bucketed view of a speaker transcript that the LLM stages read.

Words are grouped into fixed buckets (about 30 s); within a bucket a new line starts at every
change of speaker, so a line is ``MM:SS-MM:SS Speaker K: words``. Speaker labels are
normalised to ``Speaker 1..N`` in order of first appearance, the same labels for every stage of
one file. Topic boundaries are expressed as line numbers, so a boundary always falls on the
first word of a line: at a bucket edge or at a change of speaker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from autorag_dagster.core.types import SpeakerTranscript

ELLIPSIS = "…"
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def fmt_time(seconds: float) -> str:
    """``MM:SS`` below an hour, ``H:MM:SS`` from an hour on."""
    total = max(0, int(math.floor(seconds + 1e-9)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, inner apostrophes kept, possessive 's dropped)."""
    return [re.sub(r"['’]s$", "", t.lower()) for t in _TOKEN.findall(text)]


@dataclass(frozen=True)
class Line:
    start: float
    end: float
    speaker: str
    text: str

    def render(self, number: int | None = None, max_words: int | None = None, *, timed: bool = True) -> str:
        text = self.text
        if max_words is not None:
            words = text.split()
            if len(words) > max_words:
                text = " ".join(words[:max_words]) + ELLIPSIS
        prefix = f"[{number}] " if number is not None else ""
        times = f"{fmt_time(self.start)}-{fmt_time(self.end)} " if timed else ""
        return f"{prefix}{times}{self.speaker}: {text}"


@dataclass(frozen=True)
class _Word:
    start: float
    end: float
    speaker: str
    text: str


@dataclass
class TranscriptView:
    """Lines of one file at one bucket size, plus what the stages need to reason about speakers."""

    duration: float
    bucket_s: float
    labels: dict[str, str]
    lines: list[Line]
    turns: list[float] = field(default_factory=list)  # start times of words where the speaker changes

    def within(self, start: float, end: float) -> list[Line]:
        """The lines whose first word falls in ``[start, end)``; a span reaching the end keeps every later line."""
        open_end = end >= self.duration - 1e-6
        return [ln for ln in self.lines if ln.start >= start - 1e-6 and (open_end or ln.start < end - 1e-6)]

    def text(self, start: float = 0.0, end: float = math.inf) -> str:
        return " ".join(ln.text for ln in self.within(start, end))

    def speakers_in(self, start: float, end: float) -> list[str]:
        return sorted({ln.speaker for ln in self.within(start, end)}, key=_label_order)

    def turns_in(self, start: float, end: float) -> int:
        return sum(1 for t in self.turns if start + 1e-6 < t < end - 1e-6)

    def is_turn(self, t: float, tol: float = 0.5) -> bool:
        return any(abs(t - turn) <= tol for turn in self.turns)


def _label_order(label: str) -> tuple[int, str]:
    digits = label.rsplit(" ", 1)[-1]
    return (int(digits), label) if digits.isdigit() else (10**9, label)


def speaker_labels(transcript: SpeakerTranscript) -> dict[str, str]:
    """Raw diarizer labels (``SPEAKER_00``...) to ``Speaker 1..N`` in order of first appearance,
    or to the name a person gave that speaker (``transcript.names``; voice IDs are not names)."""
    given = {
        label: name
        for label, name in transcript.names.items()
        if name and name != label and not re.fullmatch(r"VOICE_\d+|SPEAKER_\d+", name)
    }
    labels: dict[str, str] = {}
    for utt in sorted(transcript.utterances, key=lambda u: u.start):
        if utt.speaker not in labels:
            labels[utt.speaker] = given.get(utt.speaker) or f"Speaker {len(labels) + 1}"
    return labels


def _words(transcript: SpeakerTranscript, labels: dict[str, str]) -> list[_Word]:
    out: list[_Word] = []
    for utt in transcript.utterances:
        speaker = labels[utt.speaker]
        if utt.words:
            out.extend(
                _Word(w.start, max(w.end, w.start), speaker, w.text.strip()) for w in utt.words if w.text.strip()
            )
            continue
        # No word timings: spread the utterance's words evenly over its span.
        parts = utt.text.split()
        step = max(utt.end - utt.start, 0.0) / max(len(parts), 1)
        out.extend(
            _Word(utt.start + i * step, utt.start + (i + 1) * step, speaker, part) for i, part in enumerate(parts)
        )
    out.sort(key=lambda w: w.start)
    return out


def build_view(transcript: SpeakerTranscript, bucket_s: float = 30.0, *, cuts: Iterable[float] = ()) -> TranscriptView:
    """Lines of at most one bucket and one speaker; a line also starts at every word that starts at
    one of ``cuts`` (the units of the segmentation, so that every boundary is a line start)."""
    cut_at = set(cuts)
    if bucket_s <= 0:
        raise ValueError(f"bucket_s must be positive, got {bucket_s}")
    labels = speaker_labels(transcript)
    words = _words(transcript, labels)
    lines: list[Line] = []
    turns: list[float] = []
    run: list[_Word] = []

    def flush() -> None:
        if run:
            lines.append(Line(run[0].start, max(w.end for w in run), run[0].speaker, " ".join(w.text for w in run)))
            run.clear()

    for prev, word in zip([None, *words], words):
        if prev is not None and prev.speaker != word.speaker:
            turns.append(word.start)
        if run and (
            word.speaker != run[0].speaker
            or int(word.start // bucket_s) != int(run[0].start // bucket_s)
            or word.start in cut_at
        ):
            flush()
        run.append(word)
    flush()
    return TranscriptView(transcript.duration_s, bucket_s, labels, lines, turns)


def merge_turns(lines: list[Line]) -> list[Line]:
    """Consecutive lines of one speaker joined into one (bucket edges matter to times, not to reading)."""
    out: list[Line] = []
    for ln in lines:
        if out and out[-1].speaker == ln.speaker:
            last = out[-1]
            out[-1] = Line(last.start, max(last.end, ln.end), last.speaker, f"{last.text} {ln.text}")
        else:
            out.append(ln)
    return out


def render_lines(
    lines: list[Line],
    *,
    numbered: bool = True,
    timed: bool = True,
    max_chars: int | None = None,
    fits: Callable[[str], bool] | None = None,
) -> str:
    """The lines as prompt text; over ``max_chars`` (or when ``fits`` says the text does not fit) every
    line is cut to the same number of words, the most that fit (one word a line at the least).

    Ollama silently drops the head of a prompt that overflows the context, which would drop the
    instructions, so an over-long view is shortened here instead, evenly across the file.
    """
    if fits is None:
        fits = (lambda text: True) if max_chars is None else (lambda text: len(text) <= max_chars)

    def rendered(max_words: int | None) -> str:
        return "\n".join(ln.render(i if numbered else None, max_words, timed=timed) for i, ln in enumerate(lines, 1))

    full = rendered(None)
    if fits(full):
        return full
    low, high = 1, max((len(ln.text.split()) for ln in lines), default=1)
    while low < high:  # the largest per-line word cap that fits
        mid = (low + high + 1) // 2
        if fits(rendered(mid)):
            low = mid
        else:
            high = mid - 1
    return rendered(low)
