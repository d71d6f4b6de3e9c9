"""The embedded Dagster runner: the project's definitions executed in this process.

One home for what the main job (``autorag run``), the benchmark and the tests do with Dagster
outside a deployment: open an instance (a folder of SQLite storage, or an ephemeral one),
register audio files as partitions, run the per-file job for one file or for many in one run
(stage by stage, each model loaded once), index the LanceDB table, and read back what a run
did (failures with their messages, failed checks, step seconds, materialisation metadata).

``DAGSTER_HOME`` is set only inside the ``with`` block and restored afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    ExecuteInProcessResult,
    LoggerDefinition,
    RunsFilter,
    colored_console_logger,
    logger,
)

from autorag_dagster.core.atomic import write_text
from autorag_dagster.defs import build_definitions
from autorag_dagster.defs.partitions import audio_files, range_tags
from autorag_dagster.settings import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PER_FILE_JOB = "process_audio"
_FILE_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.+?): (.+)$")

Progress = Callable[[str, str], None]
"""Called with (stage, detail) as a run moves on: the step that started, the file it is at."""


class _RunLogHandler(logging.Handler):
    """Dagster's log records of a run: every one into the log file, step starts and per-file
    steps to the progress callback."""

    def __init__(self, log_file: Path | None, progress: Progress | None):
        super().__init__(logging.DEBUG)
        self.progress = progress
        self.log_file = Path(log_file).resolve() if log_file else None

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or ""
        message = meta.get("orig_message") or record.getMessage()
        if self.log_file is not None:  # opened per record: Dagster closes its loggers' handlers between runs
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            with open(self.log_file, "a", encoding="utf-8") as log:
                log.write(f"{stamp} {record.levelname:<7} {(meta.get('run_id') or '')[:8]} {step} - {message}\n")
        if self.progress is None:
            return
        event = meta.get("dagster_event")
        if "blocked by limit for pool" in str(message):
            self.progress(step, "waiting for the GPU pool: another run holds it")
        elif event is not None and event.event_type == DagsterEventType.STEP_START:
            self.progress(step, "")
        elif (match := _FILE_PROGRESS.match(str(message))) and step:
            self.progress(step, f"{match.group(3)} {match.group(1)}/{match.group(2)}: {match.group(4)}")


def run_logger(handler: logging.Handler) -> LoggerDefinition:
    """A Dagster logger that hands every record of a run to ``handler``."""

    @logger(description="The main job's log file and progress line.")
    def autorag_run_logger(init_context) -> logging.Logger:
        log = logging.Logger("autorag.run", logging.DEBUG)
        log.addHandler(handler)
        return log

    return autorag_run_logger


GPU_POOL = "gpu"  # the pool that GPU assets declare (defs/assets/common.py)

# The instance of `make dev` and of the main job (`autorag run`): both open <data>/dagster.
INSTANCE_YAML = f"""\
# Dagster instance shared by `make dev` (dagster dev) and `autorag run` (the embedded runner).
# Written by autorag_dagster.runner.prepare_dagster_home, which `make dev` and every embedded
# run call: it keeps the settings found here, but always restores the pool limit below.
# Runs, event logs and schedules: Dagster's SQLite files in this folder.

telemetry:
  enabled: false

# Steps of GPU assets (transcript, diarization, topic_tree, embeddings) declare pool `{GPU_POOL}`.
# Every pool defaults to one slot, claimed per step (op granularity): no two GPU steps overlap,
# within one run (the multiprocess executor waits for the slot) or across runs. Setting a
# pool's limit in the UI or with `dagster instance concurrency set` overrides the default.
concurrency:
  pools:
    default_limit: 1
    granularity: op

# The daemon of `dagster dev` frees the slots still held by runs that have ended (a run whose
# worker died, once it is terminated in the UI), so such a slot does not block the pool for good.
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 30
"""
INSTANCE_DEFAULTS = {  # added where missing; what the file already says is kept
    "telemetry": {"enabled": False},
    "run_monitoring": {"enabled": True, "free_slots_after_run_end_seconds": 30},
}
INSTANCE_REQUIRED = {"concurrency": {"pools": {"default_limit": 1, "granularity": "op"}}}  # restored always


def _merged(base: dict, over: dict) -> dict:
    merged = dict(base)
    for name, value in over.items():
        merged[name] = (
            _merged(base[name], value) if isinstance(value, dict) and isinstance(base.get(name), dict) else value
        )
    return merged


def prepare_dagster_home(home: str | os.PathLike) -> Path:
    """Create ``home`` and its ``dagster.yaml`` (``INSTANCE_YAML``), or bring an existing one up to
    date: the pool limit restored, telemetry and run monitoring added where missing, every other
    setting kept (its comments are not: the file is rewritten, only when something changes).
    Returns ``home``."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        write_text(config, INSTANCE_YAML)
        return home
    current = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    if not isinstance(current, dict):
        raise ValueError(f"{config} does not hold a YAML mapping; move it away and run this again")
    wanted = _merged(_merged(INSTANCE_DEFAULTS, current), INSTANCE_REQUIRED)
    wanted.get("concurrency", {}).pop("default_op_concurrency_limit", None)  # Dagster refuses it beside `pools`
    if wanted != current:
        header = "".join(line + "\n" for line in INSTANCE_YAML.splitlines()[:4])
        write_text(config, header + "\n" + yaml.safe_dump(wanted, sort_keys=False))
    return home


@contextmanager
def dagster_home(home: Path) -> Iterator[Path]:
    """``DAGSTER_HOME`` pointing at ``home`` (prepared by ``prepare_dagster_home``) for the block; restored after."""
    home = prepare_dagster_home(home)
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def failure_text(result: ExecuteInProcessResult) -> str:
    """Each failed step with its message, and each failed check; '' when all went well."""
    lines = [
        f"{event.step_key}: {_step_failure_message(event.event_specific_data)}"
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    ]
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed and _is_error(c)]
    if failed:
        lines.append(f"failed checks: {', '.join(failed)}")
    return "\n".join(lines)


def _step_failure_message(data) -> str:
    """What a failed step says, without Dagster's exception class in front."""
    described = data.user_failure_data.description if data.user_failure_data else None
    return (described or (data.error.message if data.error else "failed")).strip()


def _is_error(check) -> bool:
    return check.severity.value == "ERROR"


def succeeded(result: ExecuteInProcessResult) -> bool:
    """The run succeeded and every check of severity ERROR passed (warnings are reported, not failures)."""
    return result.success and all(c.passed for c in result.get_asset_check_evaluations() if _is_error(c))


def step_seconds(results: Iterable[ExecuteInProcessResult]) -> dict[str, float]:
    """Wall seconds per step key (summed over the runs), from Dagster's STEP_SUCCESS events."""
    seconds: dict[str, float] = {}
    for result in results:
        for event in result.all_events:
            if event.event_type == DagsterEventType.STEP_SUCCESS:
                duration = event.event_specific_data.duration_ms / 1000
                seconds[event.step_key] = round(seconds.get(event.step_key, 0.0) + duration, 3)
    return seconds


def materialization_metadata(results: Iterable[ExecuteInProcessResult], asset: str) -> list[dict[str, Any]]:
    """The metadata values of ``asset``'s materialisation in each run that has one."""
    found = []
    for result in results:
        for event in result.all_events:
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key.path[-1] == asset:
                metadata = event.step_materialization_data.materialization.metadata
                found.append({name: value.value for name, value in metadata.items()})
                break
    return found


def failed_files(result: ExecuteInProcessResult, keys: Sequence[str]) -> dict[str, str]:
    """Why each of ``keys`` failed in ``result``: a step's per-file failures, a check's per-file
    problems, and, for a failure that names no file (the model server is down), every file."""
    failed: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            per_file = data.user_failure_data.metadata.get("failed_files") if data.user_failure_data else None
            if per_file is not None:
                for key, reason in per_file.value.items():
                    failed.setdefault(key, f"{event.step_key}: {reason}")
            else:
                message = _step_failure_message(data)
                for key in keys:
                    failed.setdefault(key, f"{event.step_key}: {message}")
    for check in result.get_asset_check_evaluations():
        if not check.passed and _is_error(check):
            per_file = check.metadata.get("failed_files")
            reasons = per_file.value if per_file is not None else {k: "failed" for k in keys}
            for key, reason in reasons.items():
                failed.setdefault(key, f"check {check.check_name}: {reason}")
    return {k: v for k, v in failed.items() if k in keys}


def materialized(result: ExecuteInProcessResult) -> dict[str, set[str]]:
    """Which partitions of each asset the run materialised."""
    done: dict[str, set[str]] = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            done.setdefault(event.asset_key.path[-1], set()).add(event.partition)
    return done


PID_TAG = "autorag/pid"
HOST_TAG = "autorag/host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def recover_abandoned_runs(instance: DagsterInstance) -> list[str]:
    """Mark as failed the runs of an earlier embedded runner on this machine whose process is gone
    (killed, out of memory), and free the ``gpu`` pool slots they still hold; otherwise the next
    run would wait for those slots forever. Runs of ``dagster dev`` are left to its daemon."""
    in_progress = instance.get_runs(
        filters=RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.QUEUED])
    )
    host, recovered = socket.gethostname(), []
    for run in in_progress:
        pid = run.tags.get(PID_TAG)
        if pid is None or run.tags.get(HOST_TAG) != host or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"The process that ran it (pid {pid}) ended without finishing the run.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    return recovered


@dataclass
class FolderRun:
    """What ``run_folder`` did: every run's result, and the files that failed (with why)."""

    keys: list[str]
    results: list[ExecuteInProcessResult] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> dict[str, bool]:
        return {k: k not in self.errors or not self.errors[k] for k in self.keys}

    def step_starts(self, step: str) -> int:
        """How often ``step`` ran across the runs (each run loads its model once)."""
        return sum(
            1
            for result in self.results
            for event in result.all_events
            if event.event_type == DagsterEventType.STEP_START and event.step_key == step
        )

    def model_loads(self) -> dict[str, int]:
        """Loads per model over the whole folder: Whisper and the diarizer once per step that ran,
        the LLM as the topic stages counted them (0 when every answer came from the cache)."""
        llm = sum(m.get("llm_loads", 0) for m in materialization_metadata(self.results, "topic_tree"))
        return {
            "whisper": self.step_starts("transcript"),
            "diarizer": self.step_starts("diarization"),
            "llm": llm,
            "embedder": self.step_starts("embeddings"),
        }


@dataclass
class EmbeddedDagster:
    """The project's definitions and a Dagster instance in this process; use it as a context manager.

    ``home`` is a folder for persistent storage (what ``make dev`` opens); without one the
    instance is ephemeral (tests). With ``log_file`` every run's log goes there (and the
    console logger only reports what is critical); ``progress`` hears each step start and
    each file a step reaches.
    """

    settings: Settings
    home: Path | None = None
    run_config: dict = field(default_factory=lambda: QUIET)
    log_file: Path | None = None
    progress: Progress | None = None
    defs: Definitions = field(init=False)
    instance: DagsterInstance = field(init=False)

    def __post_init__(self) -> None:
        self._exit: list = []
        self.abandoned: list[str] = []
        loggers = None
        if self.log_file is not None or self.progress is not None:
            if self.log_file is not None:
                Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
            handler = _RunLogHandler(self.log_file, self.progress)
            loggers = {"autorag_run": run_logger(handler)}
            self.run_config = {"loggers": {"autorag_run": {}}}
            if self.log_file is None:  # progress only: the console keeps its warnings
                loggers["console"] = colored_console_logger
                self.run_config["loggers"]["console"] = QUIET["loggers"]["console"]
        self.defs = build_definitions(self.settings, loggers=loggers)

    def __enter__(self) -> EmbeddedDagster:
        if self.home is None:
            self.instance = DagsterInstance.ephemeral()
        else:
            environment = dagster_home(self.home)
            resolved = environment.__enter__()
            self._exit.append(lambda: environment.__exit__(None, None, None))
            self.instance = DagsterInstance.from_config(str(resolved))
            self.abandoned = recover_abandoned_runs(self.instance)
        return self

    @property
    def tags(self) -> dict[str, str]:
        """Every run of this runner says which process runs it, so a later one can tell it was abandoned."""
        return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}

    def __exit__(self, *exc: object) -> None:
        self.instance.dispose()
        while self._exit:
            self._exit.pop()()

    # --- partitions and runs -------------------------------------------------------------------
    def register(self, keys: Sequence[str]) -> list[str]:
        """Add the files as partitions; returns the keys that were new."""
        known = set(self.instance.get_dynamic_partitions(audio_files.name))
        new = [k for k in dict.fromkeys(keys) if k not in known]
        if new:
            self.instance.add_dynamic_partitions(audio_files.name, new)
        return new

    def job(self, selection: Sequence[str] | None = None):
        job = self.defs.resolve_job_def(PER_FILE_JOB)
        return job if selection is None else job.get_subset(asset_selection={AssetKey(s) for s in selection})

    def run_file(self, key: str, selection: Sequence[str] | None = None) -> ExecuteInProcessResult:
        """Every per-file asset (or ``selection``) and its checks for one file, as one run."""
        return self.job(selection).execute_in_process(
            partition_key=key, instance=self.instance, raise_on_error=False, run_config=self.run_config, tags=self.tags
        )

    def run_files(self, keys: Sequence[str], selection: Sequence[str] | None = None) -> ExecuteInProcessResult:
        """Every per-file asset (or ``selection``) and its checks for many files in ONE run, stage by
        stage (what a single-run backfill launches): each model loads once for all of them."""
        tags = {**range_tags(self.instance, keys), **self.tags}
        return self.job(selection).execute_in_process(
            instance=self.instance, raise_on_error=False, run_config=self.run_config, tags=tags
        )

    def run_folder(self, keys: Sequence[str], selection: Sequence[str] | None = None) -> FolderRun:
        """Every file through the whole graph (or ``selection``) in as few runs as can be: one run
        for all of them, each model loaded once; when some files fail inside a step, the others go
        on from where they stopped in one more run, and each failed file is run again alone, so its
        own run says what went wrong. Returns each file's outcome and every run's result."""
        outcome = FolderRun(keys=sorted(keys))
        pending, remaining = list(outcome.keys), (list(selection) if selection else None)  # None: every asset
        while pending:
            result = self.run_files(pending, remaining) if len(pending) > 1 else self.run_file(pending[0], remaining)
            outcome.results.append(result)
            failed = failed_files(result, pending)
            outcome.failed_once |= set(failed)
            done = materialized(result)
            pending = [k for k in pending if k not in failed]
            if not pending or succeeded(result):
                break
            remaining = [a for a in (remaining or self.per_file_assets) if a not in done or not set(pending) <= done[a]]
            if not remaining:
                break
        for key in sorted(outcome.failed_once):
            alone = self.run_file(key, selection)
            outcome.results.append(alone)
            outcome.errors[key] = failed_files(alone, [key]).get(key) or ("" if succeeded(alone) else "the run failed")
        return outcome

    @property
    def per_file_assets(self) -> list[str]:
        graph = self.defs.resolve_asset_graph()
        return [k.path[-1] for k in self.job().asset_layer.selected_asset_keys if graph.get(k).partitions_def]

    def _unpartitioned(self, asset: str) -> ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={AssetKey(asset)})
        return job.execute_in_process(
            instance=self.instance, raise_on_error=False, run_config=self.run_config, tags=self.tags
        )

    def index(self) -> ExecuteInProcessResult:
        """The unpartitioned LanceDB maintenance (full-text index, vector index, compaction)."""
        return self._unpartitioned("lancedb_index")

    def voices(self) -> ExecuteInProcessResult:
        """The library-wide voice identities, clustered from every file's stored diarization."""
        return self._unpartitioned("voices")

    def _run_some(self, keys: Sequence[str], selection: Sequence[str]) -> ExecuteInProcessResult:
        keys = sorted(keys)
        return self.run_files(keys, selection) if len(keys) > 1 else self.run_file(keys[0], selection)

    def apply_speakers(self) -> list[ExecuteInProcessResult]:
        """Bring every file up to date with ``speakers.yaml`` and the identities, re-running only
        what they change: for files whose speaker-count hints changed, the diarization and what
        follows (then the identities again); for files whose shown names changed, the assets that
        show names (``NAMED_ASSETS``), never Whisper or the diarizer. One run per kind of change."""
        from autorag_dagster.core.speakers import pending_renames
        from autorag_dagster.defs.jobs import DIARIZED_ASSETS, NAMED_ASSETS

        layout, names_file = self.settings.layout, self.settings.speakers_file
        results = []
        plan = pending_renames(layout, names_file)
        if plan.hints:
            results.append(self._run_some(list(plan.hints), DIARIZED_ASSETS))
            results.append(self.voices())
            plan = pending_renames(layout, names_file)
        if plan.names:
            results.append(self._run_some(list(plan.names), NAMED_ASSETS))
        return results


if __name__ == "__main__":  # `make dev`: python -m autorag_dagster.runner <DAGSTER_HOME>
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m autorag_dagster.runner DAGSTER_HOME")
    print(f"Dagster instance: {prepare_dagster_home(sys.argv[1]) / 'dagster.yaml'}")
