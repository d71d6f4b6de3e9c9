"""A real Dagster instance, a real audio folder and the local Ollama-compatible server."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from autorag_dagster.defs import build_definitions
from autorag_dagster.settings import load_settings
from tests.support.dagster_runs import Pipeline


@pytest.fixture
def pipeline(tmp_path, local_ollama) -> Pipeline:
    audio_dir, data_dir = tmp_path / "audio", tmp_path / "data"
    audio_dir.mkdir()
    settings = load_settings(
        ollama_base_url=local_ollama.url,
        audio_dir=audio_dir,
        data_dir=data_dir,
        num_ctx=2048,
        max_concurrency=4,
    )
    instance = DagsterInstance.ephemeral()
    yield Pipeline(audio_dir, data_dir, local_ollama, instance, build_definitions(settings))
    instance.dispose()
