"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

# --- speech fixtures: espeak-ng conversations with known speakers, text and turn times ------
from tests.speech import THREE_SPEAKERS, TWO_SPEAKERS, Conversation, synthesize


@pytest.fixture(scope="session")
def two_speakers(tmp_path_factory) -> Conversation:
    """About 27 s: two clearly different voices, six alternating turns."""
    return synthesize(TWO_SPEAKERS, tmp_path_factory.mktemp("speech") / "two_speakers.wav")


@pytest.fixture(scope="session")
def three_speakers(tmp_path_factory) -> Conversation:
    """About 29 s: three clearly different voices, seven turns."""
    return synthesize(THREE_SPEAKERS, tmp_path_factory.mktemp("speech") / "three_speakers.wav")


# --- end of speech fixtures ------------------------------------------------------------------
