"""Quality checks on what each stage produced: each returns a list of problems (empty = passed).

Pure functions over the data types, so the Dagster asset checks stay thin and the conditions
are easy to test by breaking them on purpose.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np

from autorag_dagster.core.types import AudioInfo, Diarization, SpeakerTranscript, Transcript

TOLERANCE_S = 0.05
SPEECH_RMS = 0.01  # below this the file is treated as silence: an empty transcript is then fine


def _fmt(problems: list[str], limit: int = 5) -> list[str]:
    return problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])


def rms(samples: np.ndarray, block: int = 1 << 18) -> float:
    """Root mean square of ``samples``, summed block by block in float64 (no copy of the whole signal)."""
    if samples.size == 0:
        return 0.0
    total = 0.0
    for start in range(0, samples.size, block):
        piece = np.asarray(samples[start : start + block], dtype=np.float64)
        total += float(np.dot(piece, piece))
    return float(np.sqrt(total / samples.size))


def has_speech_energy(samples: np.ndarray) -> bool:
    return samples.size > 0 and rms(samples) >= SPEECH_RMS


def check_audio(info: AudioInfo) -> list[str]:
    problems = []
    if info.duration_s <= 0:
        problems.append(f"duration is {info.duration_s} s")
    if info.sample_rate != 16000:
        problems.append(f"decoded sample rate is {info.sample_rate}, expected 16000")
    if len(info.sha256) != 64:
        problems.append("sha256 missing")
    return problems


def check_transcript(transcript: Transcript, duration_s: float, speech_expected: bool) -> list[str]:
    """Words ordered, inside the audio's duration, and non-empty when the audio holds speech."""
    problems: list[str] = []
    words = transcript.words
    if speech_expected and not words:
        problems.append("no words transcribed although the audio is not silent")
    previous = 0.0
    for i, word in enumerate(words):
        if word.end < word.start:
            problems.append(f"word {i} {word.text!r} ends before it starts ({word.start:.2f} > {word.end:.2f})")
        if word.start < previous - TOLERANCE_S:
            problems.append(
                f"word {i} {word.text!r} starts at {word.start:.2f} s, before the previous word ({previous:.2f} s)"
            )
        if word.start < -TOLERANCE_S or word.end > duration_s + TOLERANCE_S:
            problems.append(
                f"word {i} {word.text!r} [{word.start:.2f}, {word.end:.2f}] lies outside [0, {duration_s:.2f}]"
            )
        previous = max(previous, word.start)
    return _fmt(problems)


def check_diarization(diarization: Diarization, duration_s: float, speech_expected: bool) -> list[str]:
    """Turns inside the duration, well-formed, and at least one speaker when there is speech."""
    problems: list[str] = []
    if speech_expected and not diarization.speakers:
        problems.append("no speaker found although the audio is not silent")
    for i, turn in enumerate(diarization.turns):
        if turn.end <= turn.start:
            problems.append(f"turn {i} of {turn.speaker} is empty or reversed ({turn.start:.2f}-{turn.end:.2f})")
        if turn.start < -TOLERANCE_S or turn.end > duration_s + TOLERANCE_S:
            problems.append(f"turn {i} [{turn.start:.2f}, {turn.end:.2f}] lies outside [0, {duration_s:.2f}]")
    return _fmt(problems)


def check_speaker_transcript(st: SpeakerTranscript, transcript: Transcript) -> list[str]:
    """Every transcribed word is attributed to exactly one speaker, in order."""
    problems: list[str] = []
    attributed = [w for u in st.utterances for w in u.words]
    if len(attributed) != len(transcript.words):
        problems.append(f"{len(attributed)} words attributed, {len(transcript.words)} transcribed")
    for i, utterance in enumerate(st.utterances):
        if any(w.speaker != utterance.speaker for w in utterance.words):
            problems.append(f"utterance {i} mixes speakers")
    return _fmt(problems)


def check_embeddings(summary, expected_rows: int, model_dim: int | None) -> list[str]:
    """One row per chunk and node, no duplicates, the model's dimension, no NaN.

    ``summary`` is a ``core.store.PartitionSummary`` of the file's rows.
    """
    problems = []
    if summary.rows != expected_rows:
        problems.append(f"{summary.rows} rows stored, {expected_rows} chunks and topic nodes expected")
    if summary.unique_row_ids != summary.rows:
        problems.append(f"{summary.rows - summary.unique_row_ids} duplicate row(s)")
    if model_dim is not None and summary.rows and summary.dim != model_dim:
        problems.append(f"vector dimension {summary.dim} differs from the model's {model_dim}")
    if summary.nan_vectors:
        problems.append(f"{summary.nan_vectors} vector(s) contain NaN or infinity")
    if len(summary.models) > 1:
        problems.append(f"rows of several embedding models mixed: {', '.join(summary.models)}")
    return problems


def check_viz_page(html_text: str, tree, transcript: SpeakerTranscript) -> list[str]:
    """The page names every topic node and carries transcript text escaped, never as live markup.

    Text is compared with the page as a browser reads it (entities decoded, tags splitting the
    text), so a title holding ``'``, ``&``, ``<`` or ``"`` is found in its escaped form, while
    transcript text written raw (a ``<script>`` that would run, a bare ``&``) is reported.
    """
    runs = _text_runs(html_text)
    whole = {run.text for run in runs if not run.raw}  # most texts fill an element: found without a scan
    problems = []
    for node in tree.walk():
        where = _locate(runs, whole, html_text, node.title) if node.title else _FOUND
        if where != _FOUND:
            problems.append(f"topic {node.id} {node.title!r} {where}")
    for utterance in transcript.utterances:
        where = _locate(runs, whole, html_text, utterance.text) if utterance.text.strip() else _FOUND
        if where != _FOUND:
            problems.append(f"transcript text at {utterance.start:.1f} s {where}")
    return _fmt(problems)


_FOUND, _MISSING, _UNESCAPED = "is on the page", "is not on the page", "appears unescaped"
_MARKUP = frozenset("<>&")


@dataclass
class _TextRun:
    """One stretch of text between tags, decoded, with the offsets of characters written raw."""

    text: str = ""
    raw: set[int] = field(default_factory=set)


class _PageReader(HTMLParser):
    """Splits a page into the text runs a browser shows (script and style contents left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # references arrive on their own: raw text is told apart
        self.runs: list[_TextRun] = []
        self._run = _TextRun()
        self._hidden: str | None = None

    def _end_run(self) -> None:
        if self._run.text:
            self.runs.append(self._run)
        self._run = _TextRun()

    def _add(self, text: str, raw: bool) -> None:
        if self._hidden is None:
            offset = len(self._run.text)
            self._run.text += text
            if raw:
                self._run.raw.update(offset + i for i, ch in enumerate(text) if ch in _MARKUP)

    def handle_starttag(self, tag: str, attrs) -> None:
        self._end_run()
        if tag in ("script", "style"):
            self._hidden = tag

    def handle_startendtag(self, tag: str, attrs) -> None:
        self._end_run()

    def handle_endtag(self, tag: str) -> None:
        self._end_run()
        if tag == self._hidden:
            self._hidden = None

    def handle_data(self, data: str) -> None:
        self._add(data, raw=True)

    def handle_entityref(self, name: str) -> None:
        self._add(html.unescape(f"&{name};"), raw=False)

    def handle_charref(self, name: str) -> None:
        self._add(html.unescape(f"&#{name};"), raw=False)

    def handle_comment(self, data: str) -> None:
        self._end_run()

    def close(self) -> None:
        super().close()
        self._end_run()


def _text_runs(html_text: str) -> list[_TextRun]:
    reader = _PageReader()
    reader.feed(html_text)
    reader.close()
    return reader.runs


def _locate(runs: list[_TextRun], whole: set[str], html_text: str, text: str) -> str:
    """Whether ``text`` is shown whole and escaped (found), shown only from raw markup characters or
    present raw in the source where it became markup (unescaped), or absent (missing)."""
    if text in whole:
        return _FOUND
    seen = False
    for run in runs:
        at = run.text.find(text)
        while at >= 0:
            seen = True
            if not any(at <= i < at + len(text) for i in run.raw):
                return _FOUND
            at = run.text.find(text, at + 1)
    if seen or (_MARKUP & set(text) and text in html_text):
        return _UNESCAPED
    return _MISSING


def check_topic_quality(tree, fallbacks, transcript: SpeakerTranscript) -> list[str]:
    """What makes a valid topic tree a poor one (a warning, not an error): level 1 fell back to the
    lexical segmentation, any other stage fell back, titles not grounded in their span, titles or
    summaries that echo the prompt or copy their span's first words. ``fallbacks``: the run's
    ``TopicStats``, its list of fallbacks (objects or dicts), or None when unknown."""
    from autorag_dagster.core.topics import topic_quality_problems

    return _fmt(topic_quality_problems(tree, fallbacks, transcript))
