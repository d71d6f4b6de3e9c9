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
)
from autorag_dagster.core.types import Diarization
from autorag_dagster.gpu.memory import configure_torch, pick_device, release_memory

TOKEN_VARIABLES = ("AUTORAG_HF_TOKEN", "HF_TOKEN")
HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+")


def hf_token() -> str | None:
    return next((os.environ[name] for name in TOKEN_VARIABLES if os.environ.get(name)), None)


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

    def diarize(self, waveform: np.ndarray, sample_rate: int, key: str) -> Diarization:
        self.load()
        import torch

        signal = as_mono_float32(waveform)
        duration = len(signal) / sample_rate
        with torch.inference_mode():
            output = self._pipeline(
                {"waveform": torch.from_numpy(signal).unsqueeze(0), "sample_rate": sample_rate},
                min_speakers=self.min_speakers,
                max_speakers=self.max_speakers,
            )
        # 4.x returns a DiarizeOutput; the exclusive view has no overlapping turns, which is
        # what word-level speaker assignment wants. Legacy pipelines return an Annotation.
        annotation = getattr(output, "exclusive_speaker_diarization", output)
        spans = [(segment.start, segment.end, label) for segment, _, label in annotation.itertracks(yield_label=True)]
        return Diarization(key=key, backend=self.name, duration_s=duration, turns=build_turns(spans, duration))

    def close(self) -> None:
        if self._pipeline is None:
            return
        if self.loaded_device == "cuda":
            import torch

            self._pipeline.to(torch.device("cpu"))
        self._pipeline = None
        release_memory()
