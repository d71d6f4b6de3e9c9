import os

import numpy as np
import pytest
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from autorag_dagster.core.audio import decode
from autorag_dagster.core.diarize import (
    Diarizer,
    DiarizerError,
    PyannoteDiarizer,
    ResemblyzerDiarizer,
    make_diarizer,
)
from autorag_dagster.settings import load_settings
from tests.support.pyannote_local import build_random_pipeline
from tests.support.speech import SAMPLE_RATE, VOICES, convert, speak


def annotation(spans) -> Annotation:
    out = Annotation()
    for start, end, speaker in spans:
        out[Segment(start, end)] = speaker
    return out


def assert_well_formed(diarization, duration):
    assert diarization.duration_s == pytest.approx(duration, abs=0.01)
    assert all(0 <= t.start < t.end <= diarization.duration_s for t in diarization.turns)
    assert all(a.start <= b.start for a, b in zip(diarization.turns, diarization.turns[1:]))


def test_offline_backend_finds_who_spoke_when(processed):
    reference = annotation(processed.conversation.turns)
    diarization = processed.diarization
    hypothesis = annotation((t.start, t.end, t.speaker) for t in diarization.turns)
    der = DiarizationErrorRate(collar=0.25)(reference, hypothesis, uem=Segment(0, processed.info.duration_s))
    assert der <= 0.15
    assert len(diarization.speakers) == len(processed.conversation.speakers)
    assert diarization.backend == "resemblyzer" and diarization.key == processed.info.key
    assert_well_formed(diarization, processed.info.duration_s)


def test_speaker_count_respects_the_bounds(three_speakers):
    samples = decode(three_speakers.path).samples
    capped = ResemblyzerDiarizer(max_speakers=2).diarize(samples, 16000, "capped.wav")
    assert len(capped.speakers) == 2
    solo = ResemblyzerDiarizer(max_speakers=1).diarize(samples, 16000, "solo.wav")
    assert solo.speakers == ["SPEAKER_00"]


def test_silence_has_no_turns(offline_diarizer):
    diarization = offline_diarizer.diarize(np.zeros(16000 * 3, np.float32), 16000, "silence.wav")
    assert diarization.turns == [] and diarization.duration_s == pytest.approx(3.0)


def test_other_sample_rates_are_resampled(offline_diarizer):
    clip = speak("A short sentence from one single voice for this check.", VOICES["bob"])
    diarization = offline_diarizer.diarize(clip.astype(np.float32) / 32768, SAMPLE_RATE, "native.wav")
    assert diarization.speakers == ["SPEAKER_00"]
    assert_well_formed(diarization, len(clip) / SAMPLE_RATE)


def test_backends_share_one_interface():
    assert isinstance(ResemblyzerDiarizer(), Diarizer)
    assert isinstance(PyannoteDiarizer(), Diarizer)
    offline = make_diarizer(load_settings(min_speakers=2, max_speakers=3, cpu_threads=1).diarizer_config)
    assert isinstance(offline, ResemblyzerDiarizer) and (offline.min_speakers, offline.max_speakers) == (2, 3)
    hub = make_diarizer(load_settings(diarizer="pyannote", pyannote_pipeline="/models/pipe").diarizer_config)
    assert isinstance(hub, PyannoteDiarizer) and hub.pipeline == "/models/pipe"


# --- pyannote.audio: the real loading and inference path on a local pipeline directory ------


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    return build_random_pipeline(tmp_path_factory.mktemp("pyannote") / "pipeline")


def test_pyannote_backend_runs_a_local_pipeline_on_decoded_mp3(pipeline_dir, two_speakers, tmp_path, monkeypatch):
    monkeypatch.delenv("PYANNOTE_METRICS_ENABLED", raising=False)
    # MP3 is the case pyannote cannot read by path; the backend only ever gets samples.
    mp3 = convert(two_speakers.path, tmp_path / "clip.mp3", "-t", "8")
    samples = decode(mp3).samples
    diarizer = PyannoteDiarizer(pipeline=str(pipeline_dir), device="cpu")
    try:
        diarization = diarizer.diarize(samples, 16000, "clip.mp3")
        assert diarizer.loaded_device == "cpu" and diarizer.load_s is not None
    finally:
        diarizer.close()
    assert diarizer._pipeline is None
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    assert diarization.backend == "pyannote" and diarization.key == "clip.mp3"
    assert diarization.turns, "a pipeline run over speech returned no turns"
    assert all(t.speaker.startswith("SPEAKER_") for t in diarization.turns)
    assert_well_formed(diarization, len(samples) / 16000)


def test_pyannote_directory_without_config_is_refused(tmp_path):
    with pytest.raises(DiarizerError, match="has no config.yaml"):
        PyannoteDiarizer(pipeline=str(tmp_path)).load()


@pytest.mark.parametrize("name", ["no-such-dir", "./models/pipeline", "a/b/c"])
def test_pyannote_name_that_is_neither_path_nor_hub_id_is_refused(name):
    with pytest.raises(DiarizerError, match="neither a local directory"):
        PyannoteDiarizer(pipeline=name).load()


def test_pyannote_broken_pipeline_names_the_checkpoint(tmp_path):
    (tmp_path / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.NoSuchPipeline\n")
    with pytest.raises(DiarizerError, match="Cannot load pyannote pipeline") as err:
        PyannoteDiarizer(pipeline=str(tmp_path)).load()
    assert str(tmp_path) in str(err.value)


def test_pyannote_voice_prints_are_the_pipelines_own_embeddings():
    from pyannote.audio.pipelines.speaker_diarization import DiarizeOutput

    from autorag_dagster.core.diarize.base import build_turns
    from autorag_dagster.core.diarize.pyannote_backend import pipeline_voices

    found = annotation([(0, 4, "B"), (4, 6, "A"), (6, 9, "B")])
    # One row per label in labels() order (A, B); B speaks first, so it becomes SPEAKER_00.
    output = DiarizeOutput(found, found, speaker_embeddings=np.array([[0.0, 2.0], [3.0, 0.0]]))
    spans = [(s.start, s.end, label) for s, _, label in found.itertracks(yield_label=True)]
    voices = pipeline_voices(output, spans, build_turns(spans, 9.0))
    assert [(v.speaker, v.talk_s, v.embedding) for v in voices] == [
        ("SPEAKER_00", 7.0, [1.0, 0.0]),
        ("SPEAKER_01", 2.0, [0.0, 1.0]),
    ]
    assert pipeline_voices(found, spans, build_turns(spans, 9.0)) == []  # a legacy pipeline: no embeddings


def test_speaker_count_hints_override_the_bounds(three_speakers):
    from autorag_dagster.core.types import SpeakerHints

    samples = decode(three_speakers.path).samples
    two = ResemblyzerDiarizer().diarize(samples, 16000, "hinted.wav", hints=SpeakerHints(num_speakers=2))
    assert len(two.speakers) == 2 and two.hints.num_speakers == 2
    assert len(two.voices) == 2
