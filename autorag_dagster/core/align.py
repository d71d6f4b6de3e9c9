"""Who said each word: words from the transcript, speakers from the diarization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autorag_dagster.core.types import (
    Diarization,
    SpeakerTranscript,
    SpeakerTurn,
    SpeakerWord,
    Transcript,
    Utterance,
    Word,
)

UNKNOWN_SPEAKER = "UNKNOWN"


@dataclass(frozen=True)
class Smoothing:
    """When a short run of words attributed to another speaker inside one speaker's turn is given
    back to the surrounding speaker.

    A run qualifies when it has at most ``max_words`` words, lasts less than ``max_seconds``, and
    the words before and after it belong to one same other speaker. It is kept, not smoothed, when
    the diarization gives evidence for it: turns of its own speaker that are real turns (at least
    ``min_turn_s`` long) or that overlap the surrounding speaker's turns (overlapped speech) cover
    at least ``min_evidence`` of its words' time. What is smoothed is what reached the other
    speaker only by spilling over a turn boundary, by falling into a gap nearer the other
    speaker's turn, or through a turn too short to be a turn of its own.
    """

    max_words: int = 2
    max_seconds: float = 1.0
    min_turn_s: float = 1.0
    min_evidence: float = 0.5


DEFAULT_SMOOTHING = Smoothing()


def speaker_for(word: Word, starts: np.ndarray, ends: np.ndarray, speakers: list[str]) -> str:
    """The speaker whose turn overlaps the word most; if none overlaps, the nearest turn's."""
    if not speakers:
        return UNKNOWN_SPEAKER
    overlap = np.minimum(ends, word.end) - np.maximum(starts, word.start)
    best = int(np.argmax(overlap))
    if overlap[best] > 0:
        return speakers[best]
    distance = np.maximum(starts - word.end, word.start - ends)  # gap between the intervals
    return speakers[int(np.argmin(distance))]


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def _evidence_s(words: list[Word], speaker: str, around: str, turns: list[SpeakerTurn], rules: Smoothing) -> float:
    """Seconds of ``words`` that ``speaker``'s real or overlapping turns cover (see ``Smoothing``)."""
    own = [t for t in turns if t.speaker == speaker]
    others = [t for t in turns if t.speaker == around]
    covered = 0.0
    for word in words:
        seconds = 0.0
        for turn in own:
            if turn.end - turn.start >= rules.min_turn_s:
                seconds += _overlap(word.start, word.end, turn.start, turn.end)
            else:  # a short turn counts where the surrounding speaker's turns overlap it
                for other in others:
                    seconds += _overlap(word.start, word.end, max(turn.start, other.start), min(turn.end, other.end))
        covered += min(seconds, word.end - word.start)
    return covered


def smooth_speakers(
    words: list[Word], labels: list[str], turns: list[SpeakerTurn], rules: Smoothing = DEFAULT_SMOOTHING
) -> tuple[list[str], int]:
    """``labels`` (one speaker per word) with short runs inside another speaker's turn given to
    that speaker, and how many words changed. Runs are judged on the labels as given: a run next
    to one just smoothed is left as it is."""
    runs: list[tuple[int, int]] = []  # [start, end) word indices of runs of one speaker
    for i, label in enumerate(labels):
        if runs and labels[runs[-1][0]] == label:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    out, changed, smoothed_previous = list(labels), 0, False
    for r in range(1, len(runs) - 1):
        (start, end), around = runs[r], labels[runs[r - 1][0]]
        run_words, speaker = words[start:end], labels[start]
        qualifies = (
            not smoothed_previous
            and around == labels[runs[r + 1][0]]
            and UNKNOWN_SPEAKER not in (around, speaker)
            and end - start <= rules.max_words
            and run_words[-1].end - run_words[0].start < rules.max_seconds
        )
        spoken_s = sum(w.end - w.start for w in run_words)
        if qualifies and _evidence_s(run_words, speaker, around, turns, rules) < rules.min_evidence * spoken_s:
            out[start:end] = [around] * (end - start)
            changed += end - start
            smoothed_previous = True
        else:
            smoothed_previous = False
    return out, changed


def assign_speakers(
    transcript: Transcript, diarization: Diarization, smoothing: Smoothing | None = DEFAULT_SMOOTHING
) -> SpeakerTranscript:
    """Label every word with a speaker; consecutive words of one speaker form an utterance.

    With ``smoothing`` (the default), short runs of words inside another speaker's turn are given
    back to that speaker (see ``Smoothing``); ``smoothed_words`` counts them.
    """
    turns = sorted(diarization.turns, key=lambda t: (t.start, t.end))
    starts = np.array([t.start for t in turns], dtype=float)
    ends = np.array([t.end for t in turns], dtype=float)
    speakers = [t.speaker for t in turns]

    words = transcript.words
    labels = [speaker_for(word, starts, ends, speakers) for word in words]
    smoothed = 0
    if smoothing is not None:
        labels, smoothed = smooth_speakers(words, labels, turns, smoothing)

    utterances: list[Utterance] = []
    for word, speaker in zip(words, labels):
        labelled = SpeakerWord(**word.model_dump(), speaker=speaker)
        if utterances and utterances[-1].speaker == labelled.speaker:
            utterances[-1].words.append(labelled)
        else:
            utterances.append(
                Utterance(speaker=labelled.speaker, start=word.start, end=word.end, text="", words=[labelled])
            )
    for utterance in utterances:
        utterance.start = utterance.words[0].start
        utterance.end = max(w.end for w in utterance.words)
        utterance.text = " ".join(w.text for w in utterance.words)
    return SpeakerTranscript(
        key=transcript.key,
        duration_s=transcript.duration_s,
        language=transcript.language,
        utterances=utterances,
        smoothed_words=smoothed,
    )
