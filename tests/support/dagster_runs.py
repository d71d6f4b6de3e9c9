"""Real Dagster runs of the per-file job: a folder of audio, an ephemeral instance, the local server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions

from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.localserve import LocalServer


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


def run_range(pipeline: Pipeline, keys: list[str]):
    """One run over several files (what a single-run backfill launches)."""
    job = pipeline.defs.resolve_job_def("process_audio")
    return job.execute_in_process(
        instance=pipeline.instance,
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )


def failure_text(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error.message) + str(e.event_specific_data.error.cause or "")
        for e in result.all_events
        if e.event_type == DagsterEventType.STEP_FAILURE
    )
