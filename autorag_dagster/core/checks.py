"""Quality checks on what each stage produced: each returns a list of problems (empty = passed).

Pure functions over the data types, so the Dagster asset checks stay thin and the conditions
are easy to test by breaking them on purpose.
"""

from __future__ import annotations

import numpy as np

from autorag_dagster.core.types import AudioInfo, Diarization, SpeakerTranscript, Transcript

TOLERANCE_S = 0.05
SPEECH_RMS = 0.01  # below this the file is treated as silence: an empty transcript is then fine


def _fmt(problems: list[str], limit: int = 5) -> list[str]:
    return problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])


def has_speech_energy(samples: np.ndarray) -> bool:
    return samples.size > 0 and float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) >= SPEECH_RMS


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
            problems.append(f"word {i} {word.text!r} starts at {word.start:.2f} s, before the previous word ({previous:.2f} s)")
        if word.start < -TOLERANCE_S or word.end > duration_s + TOLERANCE_S:
            problems.append(f"word {i} {word.text!r} [{word.start:.2f}, {word.end:.2f}] lies outside [0, {duration_s:.2f}]")
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
    """The page names every topic node and never carries transcript text unescaped."""
    import html as html_lib

    problems = []
    for node in tree.walk():
        if node.title and html_lib.escape(node.title, quote=False) not in html_text and node.title not in html_text:
            problems.append(f"topic {node.id} {node.title!r} is not on the page")
    for utterance in transcript.utterances:
        text = utterance.text
        if any(ch in text for ch in "<>&") and text in html_text:
            problems.append(f"transcript text at {utterance.start:.1f} s appears unescaped")
    return _fmt(problems)


TOPIC_STATS_FILE = "topic_stats.json"
"""Where the topic_tree asset may keep a file's ``TopicStats`` (next to ``topics.json``)."""


def check_topic_quality(tree, fallbacks, transcript: SpeakerTranscript) -> list[str]:
    """What makes a valid topic tree a poor one (a warning, not an error): level 1 fell back to the
    lexical segmentation, any other stage fell back, titles not grounded in their span, titles or
    summaries that echo the prompt or copy their span's first words. ``fallbacks``: the run's
    ``TopicStats``, its list of fallbacks (objects or dicts), or None when unknown."""
    from autorag_dagster.core.topics import topic_quality_problems

    return _fmt(topic_quality_problems(tree, fallbacks, transcript))
