"""Real Dagster runs of the per-file job: a folder of audio, an ephemeral instance, the local server.

The runs go through the project's embedded runner (``autorag_dagster.runner``), as the main
job's and the benchmark's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, Definitions

from autorag_dagster.defs import partitions
from autorag_dagster.localserve import LocalServer
from autorag_dagster.runner import EmbeddedDagster


@dataclass
class Pipeline:
    audio_dir: Path
    data_dir: Path
    server: LocalServer
    dagster: EmbeddedDagster

    @property
    def instance(self) -> DagsterInstance:
        return self.dagster.instance

    @property
    def defs(self) -> Definitions:
        return self.dagster.defs

    def add_files(self, *keys: str) -> None:
        self.dagster.register(keys)

    def run(self, key: str, selection: list[str] | None = None):
        return self.dagster.run_file(key, selection)


def run_range(pipeline: Pipeline, keys: list[str]):
    """One run over several files (what a single-run backfill launches)."""
    return pipeline.dagster.run_files(keys)


def failure_text(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error.message) + str(e.event_specific_data.error.cause or "")
        for e in result.all_events
        if e.event_type == DagsterEventType.STEP_FAILURE
    )


def errors_passed(result) -> bool:
    """Every check of severity ERROR passed (warnings such as topic_tree_quality are asserted on
    where they are the subject)."""
    return all(c.passed for c in result.get_asset_check_evaluations() if c.severity.value == "ERROR")


def covered_keys(instance: DagsterInstance, request) -> list[str]:
    """The files a run request of the per-file job covers: its partition, or its partition range."""
    return partitions.covered_keys(instance, request.partition_key, request.tags)
