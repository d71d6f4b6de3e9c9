"""Probe and decode any file FFmpeg reads to 16 kHz mono float32, once, with PyAV."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from autorag_dagster.core.types import AudioInfo

SAMPLE_RATE = 16000
PCM_FILENAME = "audio.npy"


class AudioDecodeError(ValueError):
    """The file cannot be used as audio; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"Cannot decode {str(path)!r}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    source_sample_rate: int
    source_channels: int
    codec: str
    container: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode(path: Path | str) -> DecodedAudio:
    """Decode the first audio stream of `path` to 16 kHz mono float32."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioDecodeError(path, f"the file cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise AudioDecodeError(path, "the file is empty (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise AudioDecodeError(
                    path, f"no audio stream in the {container.format.name} container (streams: {', '.join(kinds)})"
                )
            stream = container.streams.audio[0]
            codec = stream.codec_context
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
            decoded = DecodedAudio(
                samples=np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32),
                source_sample_rate=int(codec.sample_rate or 0),
                source_channels=int(codec.layout.nb_channels if codec.layout else codec.channels or 0),
                codec=codec.name,
                container=container.format.name,
            )
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise AudioDecodeError(
            path, f"FFmpeg could not read it as audio ({reason}); is the file corrupt, truncated or not audio?"
        ) from exc
    if decoded.samples.size == 0:
        raise AudioDecodeError(path, f"the {decoded.codec} stream decodes to zero samples")
    if not np.isfinite(decoded.samples).all():
        raise AudioDecodeError(path, "the decoded signal contains NaN or infinite samples")
    return decoded


def probe(path: Path | str, frames: int = 8) -> None:
    """Cheaply check that ``path`` opens as audio and its first frames decode; raise AudioDecodeError if not."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise AudioDecodeError(path, "the file is empty (0 bytes)")
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError(path, f"no audio stream in the {container.format.name} container")
            decoded = 0
            for decoded, _ in enumerate(container.decode(container.streams.audio[0]), 1):
                if decoded >= frames:
                    break
            if decoded == 0:
                raise AudioDecodeError(path, "the audio stream has no frames")
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise AudioDecodeError(path, f"FFmpeg could not read it as audio ({reason})") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"the file cannot be read ({exc.strerror or exc})") from None


def sha256_file(path: Path | str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def prepare_audio(path: Path | str, key: str, out_dir: Path | str) -> AudioInfo:
    """Decode `path`, save the samples as `<out_dir>/audio.npy`, and describe the file."""
    path = Path(path)
    decoded = decode(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pcm_path = out / PCM_FILENAME
    np.save(pcm_path, decoded.samples)
    return AudioInfo(
        key=key,
        path=str(path.resolve()),
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        duration_s=decoded.duration_s,
        source_sample_rate=decoded.source_sample_rate,
        source_channels=decoded.source_channels,
        codec=decoded.codec,
        container=decoded.container,
        sample_rate=SAMPLE_RATE,
        pcm_path=str(pcm_path.resolve()),
    )


def load_samples(info: AudioInfo) -> np.ndarray:
    """The decoded 16 kHz mono float32 samples `prepare_audio` saved."""
    return np.load(info.pcm_path)
