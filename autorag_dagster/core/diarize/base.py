"""What every diarization backend provides, and the helpers they share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from autorag_dagster.core.types import Diarization, SpeakerHints, SpeakerTurn, SpeakerVoice
from autorag_dagster.gpu.memory import ComputeConfig


class DiarizerConfig(ComputeConfig):
    """Which diarizer runs and how many speakers it may find (the AUTORAG_* settings of the same name)."""

    diarizer: Literal["resemblyzer", "pyannote"] = Field(
        "resemblyzer", description="resemblyzer (offline, CPU) or pyannote (a pipeline from the hub or a folder)."
    )
    pyannote_pipeline: str = Field(
        "pyannote/speaker-diarization-community-1", description="pyannote pipeline: hub name or local folder."
    )
    min_speakers: int = Field(1, ge=1, le=32, description="Fewest speakers the diarizer may find.")
    max_speakers: int = Field(6, ge=1, le=32, description="Most speakers the diarizer may find.")

    @field_validator("max_speakers")
    @classmethod
    def _speaker_bounds(cls, value: int, info) -> int:
        low = info.data.get("min_speakers", 1)
        if value < low:
            raise ValueError(f"must be >= AUTORAG_MIN_SPEAKERS ({low})")
        return value


class DiarizerError(RuntimeError):
    """The diarizer could not be loaded or run; the message says which backend and why."""


@runtime_checkable
class Diarizer(Protocol):
    name: str  # the backend, as recorded in `Diarization.backend`
    loaded_device: str | None  # "cpu" or "cuda" once loaded
    load_s: float | None  # seconds the last load took
    warnings: list[str]  # e.g. a CUDA failure that fell back to CPU

    def load(self) -> Diarizer:
        """Load the models (idempotent); `diarize` calls it when needed."""

    def diarize(
        self, waveform: np.ndarray, sample_rate: int, key: str, hints: SpeakerHints | None = None
    ) -> Diarization:
        """Speaker turns of a mono float32 signal, and one voice print per speaker; ``hints``
        (the user's speaker counts for this file) override the configured bounds."""

    def close(self) -> None:
        """Release the models (and the GPU memory they held)."""


def as_mono_float32(waveform: np.ndarray) -> np.ndarray:
    signal = np.asarray(waveform, dtype=np.float32)
    if signal.ndim == 2:  # (channels, samples)
        signal = signal.mean(axis=0)
    if signal.ndim != 1:
        raise ValueError(f"expected a mono signal or (channels, samples), got shape {signal.shape}")
    return signal


def resample(signal: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    if sample_rate == target:
        return signal
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sample_rate, target)
    return resample_poly(signal, target // g, sample_rate // g).astype(np.float32)


def build_turns(
    spans: Iterable[tuple[float, float, str]], duration: float, merge_gap_s: float = 0.0
) -> list[SpeakerTurn]:
    """Clip spans to [0, duration], sort them, join same-speaker spans closer than
    `merge_gap_s`, and name speakers SPEAKER_00, SPEAKER_01... in order of first appearance."""
    turns: list[list] = []
    clipped = ((round(max(0.0, s), 3), min(round(e, 3), duration), spk) for s, e, spk in spans)
    for start, end, speaker in sorted(clipped, key=lambda s: (s[0], s[1])):
        if end <= start:
            continue
        if turns and turns[-1][2] == speaker and start - turns[-1][1] <= merge_gap_s:
            turns[-1][1] = max(turns[-1][1], end)
        else:
            turns.append([start, end, speaker])
    names: dict[str, str] = {}
    for _, _, speaker in turns:
        names.setdefault(speaker, f"SPEAKER_{len(names):02d}")
    return [SpeakerTurn(start=s, end=e, speaker=names[spk]) for s, e, spk in turns]


def normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def speaker_voices(turns: list[SpeakerTurn], pieces: Iterable[tuple[float, float, np.ndarray]]) -> list[SpeakerVoice]:
    """One voice print per speaker of ``turns``: the embeddings of ``pieces`` (start, end,
    embedding) averaged per speaker, each weighted by how long it overlaps that speaker's
    turns, then L2-normalised. The talk time is the speaker's total turn time."""
    sums: dict[str, np.ndarray] = {}
    for start, end, embedding in pieces:
        for turn in turns:
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > 0:
                vector = normalised(np.asarray(embedding, dtype=np.float64)) * overlap
                sums[turn.speaker] = sums.get(turn.speaker, 0.0) + vector
    talk: dict[str, float] = {}
    for turn in turns:
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
    return [
        SpeakerVoice(speaker=s, talk_s=round(talk[s], 3), embedding=[round(float(x), 6) for x in normalised(sums[s])])
        for s in sorted(talk)
        if s in sums and np.linalg.norm(sums[s]) > 0
    ]
