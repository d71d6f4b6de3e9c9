"""Fixtures shared by every test folder; the fixture plugins in tests/support are registered here, once."""

from __future__ import annotations

import pytest

from tests.support.speech import INTRODUCTION, THREE_SPEAKERS, TWO_SPEAKERS, Conversation, synthesize

# local_ollama_factory, local_ollama, local_ollama_process, local_ollama_client
pytest_plugins = ["tests.support.localserve_fixtures"]


# --- speech fixtures: espeak-ng conversations with known speakers, text and turn times ------
@pytest.fixture(scope="session")
def two_speakers(tmp_path_factory) -> Conversation:
    """About 27 s: two clearly different voices, six alternating turns."""
    return synthesize(TWO_SPEAKERS, tmp_path_factory.mktemp("speech") / "two_speakers.wav")


@pytest.fixture(scope="session")
def three_speakers(tmp_path_factory) -> Conversation:
    """About 29 s: three clearly different voices, seven turns."""
    return synthesize(THREE_SPEAKERS, tmp_path_factory.mktemp("speech") / "three_speakers.wav")


@pytest.fixture(scope="session")
def introduction(tmp_path_factory) -> Conversation:
    """About 27 s: the two-speaker meeting, opened by Alice saying her name is Anna."""
    return synthesize(INTRODUCTION, tmp_path_factory.mktemp("speech") / "introduction.wav")


# --- end of speech fixtures ------------------------------------------------------------------
