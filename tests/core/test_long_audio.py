"""Long recordings: the decoded audio is held at most once, Whisper and the diarizer work in bounded
windows, and windowing leaves the results of short recordings as they were.

Memory is measured with tracemalloc (NumPy reports its buffers to it): the peak of what a step
allocates on a 20-minute signal must stay well under one copy of that signal.
"""

from __future__ import annotations

import difflib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from autorag_dagster.core.audio import (
    SAMPLE_RATE,
    WINDOW_S,
    AudioDecodeError,
    decode,
    load_samples,
    prepare_audio,
    quiet_cuts,
)
from autorag_dagster.core.checks import has_speech_energy, rms
from autorag_dagster.core.diarize import ResemblyzerDiarizer
from autorag_dagster.core.diarize.resemblyzer_backend import JOIN_SIMILARITY, join_speakers
from autorag_dagster.samples import write_wav

MINUTES = 20
ONE_COPY = MINUTES * 60 * SAMPLE_RATE * 4  # bytes of the decoded float32 signal
ONE_WINDOW = int(WINDOW_S * SAMPLE_RATE * 4)  # bytes of one window of it (a quarter of ONE_COPY)


def allocated_peak(call) -> tuple[object, int]:
    """``call()``'s result and the peak bytes it allocated (tracemalloc) above what was held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def long_quiet(tmp_path_factory) -> Path:
    """20 minutes at 22.05 kHz: faint noise with a short tone every minute (no speech)."""
    rate = 22050
    rng = np.random.default_rng(3)
    signal = (rng.standard_normal(MINUTES * 60 * rate) * 30).astype(np.int16)
    beep = (3000 * np.sin(np.arange(rate // 2) * 2 * np.pi * 440 / rate)).astype(np.int16)
    for minute in range(MINUTES):
        signal[minute * 60 * rate : minute * 60 * rate + len(beep)] += beep
    path = tmp_path_factory.mktemp("long") / "quiet.wav"
    write_wav(path, signal, rate)
    return path


@pytest.fixture(scope="module")
def long_info(long_quiet, tmp_path_factory):
    return prepare_audio(long_quiet, "quiet.wav", tmp_path_factory.mktemp("pcm"))


def test_decoding_writes_block_by_block_and_reads_back_mapped(long_quiet, tmp_path):
    info, peak = allocated_peak(lambda: prepare_audio(long_quiet, "quiet.wav", tmp_path))
    assert info.duration_s == pytest.approx(MINUTES * 60, abs=0.05)
    assert peak < 0.05 * ONE_COPY, f"decoding allocated {peak / 2**20:.1f} MiB at its peak"

    samples = load_samples(info)
    assert isinstance(samples, np.memmap) and not samples.flags.writeable
    assert samples.dtype == np.float32 and len(samples) == round(info.duration_s * SAMPLE_RATE)
    # What is on disk is what decoding in memory gives.
    head = decode(long_quiet).samples
    assert np.array_equal(samples, head)


def test_a_file_that_fails_to_decode_leaves_no_pcm_behind(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x00" * 200)
    with pytest.raises(AudioDecodeError, match="bad.wav"):
        prepare_audio(bad, "bad.wav", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(AudioDecodeError):
        prepare_audio(bad, "bad.wav", tmp_path / "kept")
    assert (tmp_path / "kept").is_dir() and not list((tmp_path / "kept").iterdir())


def test_rms_by_blocks_is_the_rms_and_copies_nothing(long_info):
    samples = load_samples(long_info)
    value, peak = allocated_peak(lambda: rms(samples))
    assert value == pytest.approx(float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))), rel=1e-9)
    assert peak < 0.1 * ONE_COPY
    assert has_speech_energy(samples) is (value >= 0.01)


def test_quiet_cuts_tile_the_signal_at_pauses():
    rate = SAMPLE_RATE
    signal = np.full(100 * rate, 0.5, dtype=np.float32)
    pauses = [(27.0, 27.6), (55.2, 55.9), (81.0, 81.5)]
    for start, end in pauses:
        signal[int(start * rate) : int(end * rate)] = 0.0
    ranges = quiet_cuts(signal, window_s=30.0, search_s=10.0)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(signal)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(0 < end - start <= 30 * rate for start, end in ranges)
    cuts = [end / rate for _, end in ranges[:-1]]
    assert len(cuts) == len(pauses)
    assert all(start <= cut <= end for cut, (start, end) in zip(cuts, pauses))
    assert quiet_cuts(signal[: 30 * rate], window_s=30.0) == [(0, 30 * rate)]


@pytest.mark.slow
def test_whisper_works_in_bounded_windows(transcriber, long_info):
    samples = load_samples(long_info)
    result, peak = allocated_peak(lambda: transcriber.transcribe(samples, "quiet.wav"))
    assert result.transcript.duration_s == pytest.approx(MINUTES * 60, abs=0.05)
    # faster-whisper's VAD pads and re-stacks what it is given (over two copies of it): of one
    # window here, not of the whole signal.
    assert peak < 2.5 * ONE_WINDOW < ONE_COPY, f"transcribing allocated {peak / 2**20:.1f} MiB at its peak"


@pytest.mark.slow
def test_diarizer_vad_works_in_bounded_windows(offline_diarizer, long_info):
    samples = load_samples(long_info)
    _, peak = allocated_peak(lambda: offline_diarizer.speech_regions(samples))
    assert peak < 2.5 * ONE_WINDOW < ONE_COPY, f"the diarizer's VAD allocated {peak / 2**20:.1f} MiB at its peak"


@pytest.mark.slow
def test_windowed_transcript_keeps_the_words_in_place(transcriber, processed, monkeypatch):
    whole = processed.transcription.transcript
    monkeypatch.setattr(transcriber, "window_s", 15.0)
    assert len(quiet_cuts(processed.samples, 15.0)) >= 2
    windowed = transcriber.transcribe(processed.samples, processed.info.key).transcript
    assert windowed.language == whole.language and windowed.duration_s == whole.duration_s
    words = windowed.words
    assert all(0 <= w.start <= w.end <= windowed.duration_s for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert [s.id for s in windowed.segments] == list(range(len(windowed.segments)))
    # The same words at the same times: each window's times are offset by where it starts.
    texts = [w.text.lower().strip(".,?!") for w in whole.words]
    matcher = difflib.SequenceMatcher(a=texts, b=[w.text.lower().strip(".,?!") for w in words], autojunk=False)
    pairs = [(whole.words[b.a + i], words[b.b + i]) for b in matcher.get_matching_blocks() for i in range(b.size)]
    assert len(pairs) >= 0.7 * len(whole.words)
    # (the first word of a window may start up to about half a second early, as at the start of any audio)
    gaps = sorted(abs(a.start - b.start) for a, b in pairs)
    assert gaps[len(gaps) // 2] <= 0.05 and gaps[-1] <= 1.0, gaps
    assert words[-1].end > whole.words[-1].end - 1.0


@pytest.mark.slow
def test_windowed_diarization_gives_the_same_turns(processed):
    whole = processed.diarization
    windowed = ResemblyzerDiarizer(cpu_threads=1, vad_window_s=12.0)
    try:
        assert len(quiet_cuts(processed.samples, 12.0)) >= 2
        result = windowed.diarize(processed.samples, SAMPLE_RATE, processed.info.key)
    finally:
        windowed.close()
    assert [t.speaker for t in result.turns] == [t.speaker for t in whole.turns]
    for ours, theirs in zip(result.turns, whole.turns):
        assert ours.start == pytest.approx(theirs.start, abs=0.1) and ours.end == pytest.approx(theirs.end, abs=0.1)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the items alike (whatever the label names)."""
    return len(set(zip(a, b))) == len(set(a)) == len(set(b))


def test_many_windows_are_clustered_in_blocks_into_the_same_speakers():
    """Four voices taking turns (d-vectors about as alike as Resemblyzer's: 0.8 within a voice,
    0.5-0.6 across): in blocks of 200 windows, the same speakers as all 700 at once, and the true ones."""
    rng = np.random.default_rng(1)
    dim, voices = 256, 4
    centres = rng.standard_normal(dim) + 0.8 * rng.standard_normal((voices, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.concatenate([np.full(rng.integers(6, 20), (turn * 3 + turn // voices) % voices) for turn in range(60)])
    embeddings = centres[truth] + rng.standard_normal((len(truth), dim)) * 0.55 / np.sqrt(dim)
    embeddings = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)

    whole = ResemblyzerDiarizer().cluster(embeddings)
    blocked = ResemblyzerDiarizer(cluster_block=200).cluster(embeddings)
    assert len(truth) > 3 * 200
    assert same_partition(whole, truth) and same_partition(blocked, truth)
    capped = ResemblyzerDiarizer(cluster_block=200, max_speakers=3).cluster(embeddings)
    assert len(set(capped)) == 3


def test_blocks_speakers_join_by_voice_never_within_a_block():
    rng = np.random.default_rng(5)
    voices = rng.standard_normal((3, 64))
    voices /= np.linalg.norm(voices, axis=1, keepdims=True)

    def near(voice: int) -> np.ndarray:
        vector = voices[voice] + 0.02 * rng.standard_normal(64)
        return vector / np.linalg.norm(vector)

    # block 0 heard voices 0 and 1; block 1 voices 1 and 2; block 2 voice 0
    means = np.array([near(0), near(1), near(1), near(2), near(0)])
    blocks = np.array([0, 0, 1, 1, 2])
    labels = join_speakers(means, blocks, low=1, high=6)
    assert labels[0] == labels[4] and labels[1] == labels[2]
    assert len(set(labels)) == 3
    # Two speakers of one block stay apart however alike they are.
    twins = np.array([voices[0], voices[0]])
    assert len(set(join_speakers(twins, np.array([0, 0]), low=1, high=6))) == 2
    assert float(voices[0] @ voices[1]) < JOIN_SIMILARITY
    # The bounds win over the threshold.
    assert len(set(join_speakers(means, blocks, low=1, high=2))) == 2
    assert len(set(join_speakers(means, blocks, low=4, high=6))) == 4
