"""Who said each word: words from the transcript, speakers from the diarization."""

from __future__ import annotations

import numpy as np

from autorag_dagster.core.types import Diarization, SpeakerTranscript, SpeakerWord, Transcript, Utterance, Word

UNKNOWN_SPEAKER = "UNKNOWN"


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


def assign_speakers(transcript: Transcript, diarization: Diarization) -> SpeakerTranscript:
    """Label every word with a speaker; consecutive words of one speaker form an utterance."""
    turns = sorted(diarization.turns, key=lambda t: (t.start, t.end))
    starts = np.array([t.start for t in turns], dtype=float)
    ends = np.array([t.end for t in turns], dtype=float)
    speakers = [t.speaker for t in turns]

    utterances: list[Utterance] = []
    for word in transcript.words:
        labelled = SpeakerWord(**word.model_dump(), speaker=speaker_for(word, starts, ends, speakers))
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
        key=transcript.key, duration_s=transcript.duration_s, language=transcript.language, utterances=utterances
    )
