"""A real Dagster instance, a real audio folder and the local Ollama-compatible server."""

from __future__ import annotations

import pytest

from autorag_dagster.runner import EmbeddedDagster
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
    with EmbeddedDagster(settings) as dagster:
        yield Pipeline(audio_dir, data_dir, local_ollama, dagster)
