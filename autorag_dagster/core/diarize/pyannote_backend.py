"""pyannote.audio diarization: a hub pipeline (token from the environment) or a local directory.

The decoded waveform is passed in memory (`{"waveform", "sample_rate"}`), never a path:
pyannote.audio 4 reading MP3 or Opus by path comes up a few hundred samples short on the
last chunk and fails. The pipeline goes to the GPU when there is one and leaves it on close.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autorag_dagster.core.diarize.base import (
    DiarizerError,
    as_mono_float32,
    build_turns,
    normalised,
)
from autorag_dagster.core.types import Diarization, SpeakerHints, SpeakerVoice
from autorag_dagster.gpu.memory import configure_torch, pick_device, release_memory

TOKEN_VARIABLES = ("AUTORAG_HF_TOKEN", "HF_TOKEN")
HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+")


def hf_token() -> str | None:
    return next((os.environ[name] for name in TOKEN_VARIABLES if os.environ.get(name)), None)


def pipeline_voices(output, spans, turns) -> list[SpeakerVoice]:
    """The pipeline's own speaker embeddings (``DiarizeOutput.speaker_embeddings``, one row per
    label of ``speaker_diarization.labels()``), under the local labels of ``turns``; empty when
    the pipeline returns none (legacy pipelines)."""
    embeddings = getattr(output, "speaker_embeddings", None)
    labels_of = getattr(getattr(output, "speaker_diarization", None), "labels", None)
    if embeddings is None or labels_of is None:
        return []
    rows = dict(zip(labels_of(), np.asarray(embeddings)))
    overlaps: dict[str, dict[str, float]] = {}  # pipeline label -> SPEAKER_xx -> seconds in common
    for start, end, label in spans:
        for turn in turns:
            common = min(end, turn.end) - max(start, turn.start)
            if common > 0:
                shared = overlaps.setdefault(label, {})
                shared[turn.speaker] = shared.get(turn.speaker, 0.0) + common
    local = {label: max(shared, key=shared.get) for label, shared in overlaps.items()}
    talk: dict[str, float] = {}
    for turn in turns:
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
    voices = []
    for label, speaker in local.items():
        row = rows.get(label)
        if row is None or not np.all(np.isfinite(row)):
            continue
        vector = normalised(np.asarray(row, dtype=np.float64))
        voices.append(SpeakerVoice(speaker=speaker, talk_s=round(talk.get(speaker, 0.0), 3), embedding=vector.tolist()))
    return sorted(voices, key=lambda v: v.speaker)


@dataclass
class PyannoteDiarizer:
    pipeline: str = "pyannote/speaker-diarization-community-1"
    min_speakers: int = 1
    max_speakers: int = 6
    cpu_threads: int = 1
    device: str = "auto"
    name: str = field(default="pyannote", init=False)
    loaded_device: str | None = field(default=None, init=False)
    load_s: float | None = field(default=None, init=False)
    warnings: list[str] = field(default_factory=list, init=False)
    _pipeline: object | None = field(default=None, init=False, repr=False)

    def _checkpoint(self) -> str:
        local = Path(self.pipeline).expanduser()
        if local.is_dir():
            if not (local / "config.yaml").is_file():
                raise DiarizerError(f"pyannote pipeline directory {str(local)!r} has no config.yaml")
            return str(local)
        if local.is_file():  # a config.yaml
            return str(local)
        if not HUB_NAME.fullmatch(self.pipeline):
            raise DiarizerError(
                f"pyannote pipeline {self.pipeline!r} is neither a local directory (or config.yaml) "
                "nor a hub name such as 'pyannote/speaker-diarization-community-1'"
            )
        return self.pipeline

    def load(self) -> PyannoteDiarizer:
        if self._pipeline is not None:
            return self
        start = time.perf_counter()
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        configure_torch(self.cpu_threads)
        import torch
        from pyannote.audio import Pipeline

        checkpoint = self._checkpoint()
        try:
            pipeline = Pipeline.from_pretrained(checkpoint, token=hf_token())
        except Exception as exc:
            pipeline, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = "the hub returned nothing (gated or private repository?)"
        if pipeline is None:
            hint = (
                ""
                if Path(checkpoint).is_dir()
                else f" For a hub pipeline, accept its conditions at https://hf.co/{checkpoint} and set "
                f"HF_TOKEN (or AUTORAG_HF_TOKEN); offline, point AUTORAG_PYANNOTE_PIPELINE at a "
                f"local copy of the pipeline."
            )
            raise DiarizerError(f"Cannot load pyannote pipeline {checkpoint!r}: {error}.{hint}")

        device = pick_device(self.device)
        if device == "cuda":
            try:
                pipeline.to(torch.device("cuda"))
            except RuntimeError as exc:
                message = f"pyannote pipeline {checkpoint!r} could not move to CUDA ({exc}); running on CPU."
                self.warnings.append(message)
                pipeline.to(torch.device("cpu"))
                device = "cpu"
        self._pipeline = pipeline
        self.loaded_device = device
        self.load_s = time.perf_counter() - start
        return self

    def diarize(
        self, waveform: np.ndarray, sample_rate: int, key: str, hints: SpeakerHints | None = None
    ) -> Diarization:
        self.load()
        import torch

        hints = hints or SpeakerHints()
        signal = as_mono_float32(waveform)
        duration = len(signal) / sample_rate
        low, high = hints.bounds(self.min_speakers, self.max_speakers)
        counts = {"num_speakers": low} if low == high else {"min_speakers": low, "max_speakers": high}
        with torch.inference_mode():
            output = self._pipeline(
                {"waveform": torch.from_numpy(signal).unsqueeze(0), "sample_rate": sample_rate}, **counts
            )
        # 4.x returns a DiarizeOutput; the exclusive view has no overlapping turns, which is
        # what word-level speaker assignment wants. Legacy pipelines return an Annotation.
        annotation = getattr(output, "exclusive_speaker_diarization", output)
        spans = [(segment.start, segment.end, label) for segment, _, label in annotation.itertracks(yield_label=True)]
        turns = build_turns(spans, duration)
        return Diarization(
            key=key,
            backend=self.name,
            duration_s=duration,
            turns=turns,
            voices=pipeline_voices(output, spans, turns),
            hints=hints,
        )

    def close(self) -> None:
        if self._pipeline is None:
            return
        if self.loaded_device == "cuda":
            import torch

            self._pipeline.to(torch.device("cpu"))
        self._pipeline = None
        release_memory()
