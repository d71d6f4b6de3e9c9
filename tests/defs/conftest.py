"""A real Dagster instance, a real audio folder and the local Ollama-compatible server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions

from autorag_dagster.defs import build_definitions
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.localserve import LocalServer
from autorag_dagster.localserve.pytest_fixtures import local_ollama, local_ollama_factory  # noqa: F401
from autorag_dagster.settings import load_settings


@dataclass
class Pipeline:
    audio_dir: Path
    data_dir: Path
    server: LocalServer
    instance: DagsterInstance
    defs: Definitions

    def add_files(self, *keys: str) -> None:
        self.instance.add_dynamic_partitions(audio_files.name, list(keys))

    def run(self, key: str, selection: list[str] | None = None):
        job = self.defs.resolve_job_def("process_audio")
        if selection is not None:
            job = job.get_subset(asset_selection={AssetKey(s) for s in selection})
        return job.execute_in_process(partition_key=key, instance=self.instance, raise_on_error=False)


@pytest.fixture
def pipeline(tmp_path, local_ollama) -> Pipeline:  # noqa: F811
    audio_dir, data_dir = tmp_path / "audio", tmp_path / "data"
    audio_dir.mkdir()
    settings = load_settings(
        ollama_base_url=local_ollama.url, audio_dir=audio_dir, data_dir=data_dir, num_ctx=2048, max_concurrency=4,
    )
    instance = DagsterInstance.ephemeral()
    yield Pipeline(audio_dir, data_dir, local_ollama, instance, build_definitions(settings))
    instance.dispose()


def run_range(pipeline: Pipeline, keys: list[str]):
    """One run over several files (what a single-run backfill launches)."""
    job = pipeline.defs.resolve_job_def("process_audio")
    return job.execute_in_process(
        instance=pipeline.instance,
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )
