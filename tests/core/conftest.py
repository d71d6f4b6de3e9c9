"""Models loaded once per session and run once per speech fixture (CPU time is scarce)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.diarize import ResemblyzerDiarizer
from autorag_dagster.core.transcribe import Transcriber, Transcription
from autorag_dagster.core.types import AudioInfo, Diarization
from tests.support.speech import Conversation


@dataclass(frozen=True)
class Processed:
    conversation: Conversation
    info: AudioInfo
    samples: np.ndarray
    transcription: Transcription
    diarization: Diarization


@pytest.fixture(scope="session")
def transcriber():
    with Transcriber(cpu_threads=1) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def offline_diarizer():
    diarizer = ResemblyzerDiarizer(cpu_threads=1).load()
    yield diarizer
    diarizer.close()


@pytest.fixture(scope="session", params=["two_speakers", "three_speakers"])
def processed(request, tmp_path_factory, transcriber, offline_diarizer) -> Processed:
    """Each conversation decoded, transcribed and diarized once per session."""
    conversation = request.getfixturevalue(request.param)
    info = prepare_audio(conversation.path, f"{request.param}.wav", tmp_path_factory.mktemp("pcm"))
    samples = load_samples(info)
    return Processed(
        conversation=conversation,
        info=info,
        samples=samples,
        transcription=transcriber.transcribe(samples, info.key),
        diarization=offline_diarizer.diarize(samples, info.sample_rate, info.key),
    )
