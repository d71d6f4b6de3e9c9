"""Probe and decode any file FFmpeg reads to 16 kHz mono float32, once, with PyAV; cut a long signal
into bounded windows at pauses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from autorag_dagster.core.types import AudioInfo

SAMPLE_RATE = 16000
PCM_FILENAME = "audio.npy"
# Whisper and the diarizer take a longer signal this many seconds at a time (cut at pauses): their
# working memory is then bounded by the window, not by the length of the recording.
WINDOW_S = 300.0


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


@dataclass(frozen=True)
class _Source:
    source_sample_rate: int
    source_channels: int
    codec: str
    container: str


def _decode_blocks(path: Path, sink: Callable[[np.ndarray], None]) -> _Source:
    """Decode the first audio stream of ``path`` to 16 kHz mono float32, handing each resampled frame
    (a few thousand samples) to ``sink`` as it comes: nothing here holds the whole signal."""
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
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    sink(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                sink(out.to_ndarray().reshape(-1))
            return _Source(
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


class _Checked:
    """A sink that counts the samples and remembers whether any was NaN or infinite."""

    def __init__(self, sink: Callable[[np.ndarray], None]):
        self.sink, self.count, self.finite = sink, 0, True

    def __call__(self, block: np.ndarray) -> None:
        self.count += len(block)
        self.finite = self.finite and bool(np.isfinite(block).all())
        self.sink(block)

    def verify(self, path: Path, source: _Source) -> None:
        if self.count == 0:
            raise AudioDecodeError(path, f"the {source.codec} stream decodes to zero samples")
        if not self.finite:
            raise AudioDecodeError(path, "the decoded signal contains NaN or infinite samples")


def decode(path: Path | str) -> DecodedAudio:
    """Decode the first audio stream of `path` to 16 kHz mono float32, in memory (`prepare_audio`
    writes the samples to disk as they are decoded instead)."""
    path = Path(path)
    blocks: list[np.ndarray] = []
    checked = _Checked(blocks.append)
    source = _decode_blocks(path, checked)
    checked.verify(path, source)
    return DecodedAudio(samples=np.concatenate(blocks), **vars(source))


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


def _npy_header(fh: BinaryIO, count: int) -> None:
    np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (count,)})


def write_pcm(path: Path, pcm_path: Path) -> tuple[_Source, int]:
    """Decode ``path`` straight into the .npy file ``pcm_path`` (float32, 16 kHz mono): each block is
    written as it is decoded and the header's length filled in at the end (NumPy pads the header so
    that a longer shape fits in place), so decoding never holds the whole signal."""
    partial = pcm_path.with_name(pcm_path.name + ".part")
    try:
        with open(partial, "wb") as fh:
            _npy_header(fh, 0)
            data_offset = fh.tell()
            checked = _Checked(lambda block: fh.write(np.ascontiguousarray(block, dtype="<f4").data))
            source = _decode_blocks(path, checked)
            checked.verify(path, source)
            fh.seek(0)
            _npy_header(fh, checked.count)
            if fh.tell() != data_offset:  # cannot happen with NumPy's padded headers; never write a bad file
                raise RuntimeError(f"the .npy header of {pcm_path} changed length")
        partial.replace(pcm_path)
    finally:
        partial.unlink(missing_ok=True)
    return source, checked.count


def prepare_audio(path: Path | str, key: str, out_dir: Path | str) -> AudioInfo:
    """Decode `path` into `<out_dir>/audio.npy` (block by block, never whole in memory), and describe the file."""
    path = Path(path)
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    pcm_path = out / PCM_FILENAME
    try:
        source, count = write_pcm(path, pcm_path)
    except BaseException:
        if created:  # a file that is not audio leaves no folder behind
            out.rmdir()
        raise
    return AudioInfo(
        key=key,
        path=str(path.resolve()),
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        duration_s=count / SAMPLE_RATE,
        source_sample_rate=source.source_sample_rate,
        source_channels=source.source_channels,
        codec=source.codec,
        container=source.container,
        sample_rate=SAMPLE_RATE,
        pcm_path=str(pcm_path.resolve()),
    )


def load_samples(info: AudioInfo) -> np.ndarray:
    """The decoded 16 kHz mono float32 samples `prepare_audio` saved, memory-mapped read-only: the
    pages come from the file as they are read and are shared, never copied, by whoever reads them."""
    return np.load(info.pcm_path, mmap_mode="r")


def quiet_cuts(
    samples: np.ndarray, window_s: float, search_s: float = 30.0, frame_s: float = 0.1
) -> list[tuple[int, int]]:
    """Split ``samples`` (16 kHz) into consecutive ``(start, end)`` sample ranges of at most
    ``window_s`` seconds that tile the whole signal; each cut falls in the middle of the quietest
    ``frame_s`` frame of the last ``search_s`` seconds before the limit (a pause, where no word is
    cut). A signal no longer than ``window_s`` is one range. Only the searched stretch is read."""
    total, width = len(samples), int(window_s * SAMPLE_RATE)
    frame = max(1, int(frame_s * SAMPLE_RATE))
    search = min(int(search_s * SAMPLE_RATE), width // 2)
    ranges, cursor = [], 0
    while total - cursor > width:
        limit = cursor + width
        frames = (search // frame) or 1
        stretch = np.asarray(samples[limit - frames * frame : limit], dtype=np.float32).reshape(frames, frame)
        energy = np.einsum("ij,ij->i", stretch, stretch)
        cut = limit - frames * frame + int(np.argmin(energy)) * frame + frame // 2
        ranges.append((cursor, cut))
        cursor = cut
    ranges.append((cursor, total))
    return ranges
