"""Offline CPU diarization: Resemblyzer embeddings over speech, spectral clustering.

1. Silero VAD (shipped inside faster-whisper) finds the speech regions, ``WINDOW_S`` of audio
   at a time (cut at pauses), so a long recording costs it no more memory than a short one.
2. Each region is cut into overlapping windows; Resemblyzer's voice encoder (its weights
   ship in its wheel) embeds the windows ``batch_size`` at a time, straight from the signal
   (scaled by one gain for the whole file, never a scaled copy of it).
3. Spectral clustering groups the windows; the number of speakers is estimated from the
   eigen-gap, bounded by `min_speakers`/`max_speakers`. Its cost grows with the cube of the
   number of windows, so a long recording (more than ``cluster_block`` windows, about 12 minutes
   of speech) is clustered in consecutive blocks, and the blocks' speakers are joined by their
   mean voice (average linkage; two speakers of one block are never joined).
4. Each window owns the stretch of its region closest to its centre; runs of one speaker
   become turns, and same-speaker turns separated by short pauses are joined.
5. Each speaker's voice print is the mean of its windows' d-vectors (weighted by the stretch
   each window owns), which the library-wide ``voices`` asset clusters into identities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from autorag_dagster.core.audio import WINDOW_S, quiet_cuts
from autorag_dagster.core.checks import rms
from autorag_dagster.core.diarize.base import (
    DiarizerError,
    as_mono_float32,
    build_turns,
    normalised,
    resample,
    speaker_voices,
)
from autorag_dagster.core.types import Diarization, SpeakerHints
from autorag_dagster.gpu.memory import configure_torch, pick_device, release_memory

SAMPLE_RATE = 16000  # what both Silero VAD and Resemblyzer expect
PARTIAL_FRAMES = 160  # Resemblyzer's 1.6 s input, in 10 ms mel frames
# Below this many windows the eigen-gap is meaningless: agglomerative clustering decides.
SPECTRAL_MIN_WINDOWS = 6
ESTIMATE_UP_TO = 10  # the free speaker-count estimate looks this far before clamping
# Blocks' speakers whose mean d-vectors are at least this similar (cosine) are one speaker. One
# voice's means in two 10-minute blocks measured 0.99-1.0; the closest two generated voices 0.94.
JOIN_SIMILARITY = 0.95
APART = 2.0  # the cosine distance given to two speakers of one block: never joined


def _spectral(embeddings: np.ndarray, min_clusters: int, max_clusters: int) -> np.ndarray:
    from spectralcluster import (
        ICASSP2018_REFINEMENT_SEQUENCE,
        FallbackClustererType,
        FallbackOptions,
        RefinementOptions,
        SpectralClusterer,
        ThresholdType,
    )

    clusterer = SpectralClusterer(
        min_clusters=min_clusters,
        max_clusters=max_clusters,
        refinement_options=RefinementOptions(
            gaussian_blur_sigma=1,
            p_percentile=0.95,
            thresholding_soft_multiplier=0.01,
            thresholding_type=ThresholdType.RowMax,
            refinement_sequence=ICASSP2018_REFINEMENT_SEQUENCE,
        ),
        fallback_options=FallbackOptions(
            spectral_min_embeddings=SPECTRAL_MIN_WINDOWS,
            fallback_clusterer_type=FallbackClustererType.Agglomerative,
            agglomerative_threshold=0.25,  # cosine distance; one voice stays above ~0.8 similarity
        ),
        custom_dist="cosine",
    )
    return clusterer.predict(embeddings)


def loudness_gain(signal: np.ndarray, target_dbfs: float) -> float:
    """The factor Resemblyzer's ``normalize_volume(signal, target_dbfs, increase_only=True)`` would
    scale ``signal`` by (1.0 when it is already as loud), from a block-wise RMS."""
    level = rms(signal)
    if level <= 0:
        return 1.0
    change = target_dbfs - 20 * np.log10(level)
    return float(10 ** (change / 20)) if change > 0 else 1.0


def join_speakers(means: np.ndarray, block_of: np.ndarray, low: int, high: int) -> np.ndarray:
    """Global speaker labels for the blocks' speakers (unit mean d-vectors ``means``, from blocks
    ``block_of``): average-linkage clustering on cosine distance, joined while at least
    ``JOIN_SIMILARITY`` alike, never two of one block; the count is then held within ``[low, high]``."""
    count = len(means)
    if count < 2:
        return np.zeros(count, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    distance = np.clip(1.0 - means @ means.T, 0.0, 2.0)
    distance[block_of[:, None] == block_of[None, :]] = APART
    np.fill_diagonal(distance, 0.0)

    def fit(**how) -> np.ndarray:
        clusterer = AgglomerativeClustering(metric="precomputed", linkage="average", **how)
        return clusterer.fit_predict(distance)

    labels = fit(n_clusters=None, distance_threshold=1.0 - JOIN_SIMILARITY)
    found = len(np.unique(labels))
    wanted = int(np.clip(found, min(low, count), min(high, count)))
    return labels if wanted == found else fit(n_clusters=wanted)


@dataclass
class ResemblyzerDiarizer:
    min_speakers: int = 1
    max_speakers: int = 6
    cpu_threads: int = 1
    device: str = "cpu"
    window_s: float = 1.5
    hop_s: float = 0.75
    merge_gap_s: float = 0.5
    min_silence_ms: int = 300  # pauses longer than this split speech regions
    batch_size: int = 64
    vad_window_s: float = WINDOW_S
    cluster_block: int = 1000  # more windows than this are clustered block by block
    name: str = field(default="resemblyzer", init=False)
    loaded_device: str | None = field(default=None, init=False)
    load_s: float | None = field(default=None, init=False)
    warnings: list[str] = field(default_factory=list, init=False)
    _encoder: object | None = field(default=None, init=False, repr=False)

    def load(self) -> ResemblyzerDiarizer:
        if self._encoder is not None:
            return self
        start = time.perf_counter()
        configure_torch(self.cpu_threads)
        from resemblyzer import VoiceEncoder

        device = pick_device(self.device)
        try:
            self._encoder = VoiceEncoder(device=device, verbose=False)
        except Exception as exc:
            raise DiarizerError(f"Cannot load Resemblyzer's voice encoder on {device}: {exc}") from exc
        self.loaded_device = device
        self.load_s = time.perf_counter() - start
        return self

    def speech_regions(self, signal: np.ndarray) -> list[tuple[int, int]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(min_silence_duration_ms=self.min_silence_ms, speech_pad_ms=100)
        regions = []
        for first, last in quiet_cuts(signal, self.vad_window_s):
            found = get_speech_timestamps(signal[first:last], options, sampling_rate=SAMPLE_RATE)
            regions += [(first + r["start"], first + r["end"]) for r in found]
        return regions

    def windows(self, regions: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
        """(window start, window end, owned start, owned end) in samples, per region."""
        width, hop = int(self.window_s * SAMPLE_RATE), int(self.hop_s * SAMPLE_RATE)
        out = []
        for start, end in regions:
            count = max(1, int(np.ceil(max(0, end - start - width) / hop)) + 1)
            wins = [(start + i * hop, min(end, start + i * hop + width)) for i in range(count)]
            centres = [(a + b) // 2 for a, b in wins]
            cuts = [start] + [(c1 + c2) // 2 for c1, c2 in zip(centres, centres[1:])] + [end]
            out += [(a, b, cuts[i], cuts[i + 1]) for i, (a, b) in enumerate(wins)]
        return out

    def embed(self, signal: np.ndarray, windows: list[tuple[int, int, int, int]], gain: float = 1.0) -> np.ndarray:
        """One d-vector per window of ``signal`` scaled by ``gain``; the mel spectrograms are made
        ``batch_size`` windows at a time, so memory does not grow with the number of windows."""
        import torch
        from resemblyzer.audio import wav_to_mel_spectrogram

        min_len = PARTIAL_FRAMES * SAMPLE_RATE // 100
        batches = []
        with torch.inference_mode():
            for i in range(0, len(windows), self.batch_size):
                mels = []
                for a, b, _, _ in windows[i : i + self.batch_size]:
                    piece = signal[a:b] * np.float32(gain) if gain != 1.0 else signal[a:b]
                    piece = np.pad(piece, (0, max(0, min_len - len(piece))))
                    mels.append(wav_to_mel_spectrogram(piece)[:PARTIAL_FRAMES])
                batch = torch.from_numpy(np.stack(mels)).to(self.loaded_device)
                batches.append(self._encoder(batch).cpu().numpy())
        return np.concatenate(batches)

    def cluster(self, embeddings: np.ndarray, hints: SpeakerHints | None = None) -> np.ndarray:
        """One speaker label per window, the count within the bounds (``hints`` override the
        configured ones). Up to ``cluster_block`` windows, one spectral clustering; beyond, each
        block of consecutive windows is clustered on its own and the blocks' speakers joined."""
        count = len(embeddings)
        low, high = (hints or SpeakerHints()).bounds(self.min_speakers, self.max_speakers)
        if count <= self.cluster_block:
            return self._cluster(embeddings, low, high)
        blocks = np.array_split(np.arange(count), int(np.ceil(count / self.cluster_block)))
        labels = np.zeros(count, dtype=int)
        means, block_of = [], []
        for number, members in enumerate(blocks):
            local = self._cluster(embeddings[members], 1, high)  # a block may hear fewer than `low`
            for label in np.unique(local):
                labels[members[local == label]] = len(means)
                means.append(normalised(embeddings[members[local == label]].astype(np.float64).mean(axis=0)))
                block_of.append(number)
        joined = join_speakers(np.array(means), np.array(block_of), low, high)
        return joined[labels]

    def _cluster(self, embeddings: np.ndarray, low: int, high: int) -> np.ndarray:
        """Estimate the speaker count freely, clamp it to ``[low, high]``, and cluster with it.

        (Capping the eigen-gap search itself would not do: with three voices and at most two
        allowed, the largest gap left in range is the one that says "one speaker".)
        """
        count = len(embeddings)
        if count < 2:
            return np.zeros(count, dtype=int)
        labels = _spectral(embeddings, 1, min(count, max(high, ESTIMATE_UP_TO)))
        speakers = int(np.clip(len(np.unique(labels)), min(low, count), min(high, count)))
        if speakers != len(np.unique(labels)):
            if count >= SPECTRAL_MIN_WINDOWS:
                labels = _spectral(embeddings, speakers, speakers)
            else:
                from sklearn.cluster import AgglomerativeClustering

                clusterer = AgglomerativeClustering(n_clusters=speakers, metric="cosine", linkage="average")
                labels = clusterer.fit_predict(embeddings)
        return labels

    def diarize(
        self, waveform: np.ndarray, sample_rate: int, key: str, hints: SpeakerHints | None = None
    ) -> Diarization:
        self.load()
        hints = hints or SpeakerHints()
        signal = resample(as_mono_float32(waveform), sample_rate, SAMPLE_RATE)
        duration = len(signal) / SAMPLE_RATE
        windows = self.windows(self.speech_regions(signal))
        spans, embeddings = [], np.zeros((0, 256), dtype=np.float32)
        if windows:
            embeddings = self.embed(signal, windows, loudness_gain(signal, -30.0))
            labels = self.cluster(embeddings, hints)
            spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE, str(label)) for (_, _, a, b), label in zip(windows, labels)]
        turns = build_turns(spans, duration, merge_gap_s=self.merge_gap_s)
        owned = [(a / SAMPLE_RATE, b / SAMPLE_RATE, e) for (_, _, a, b), e in zip(windows, embeddings)]
        return Diarization(
            key=key,
            backend=self.name,
            duration_s=duration,
            turns=turns,
            voices=speaker_voices(turns, owned),
            hints=hints,
        )

    def close(self) -> None:
        if self._encoder is None:
            return
        self._encoder = None
        release_memory()
