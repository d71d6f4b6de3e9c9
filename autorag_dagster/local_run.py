"""The main job on a laptop: the whole asset graph on a folder, with embedded defaults.

No GPU, no Docker and no Ollama needed: when nothing answers at AUTORAG_OLLAMA_BASE_URL the
packaged Ollama-compatible server starts with the packaged models (and says so); Dagster's
storage is a folder under the data directory; every result lands under the data directory.
The same graph runs unchanged against a real Ollama: only settings differ.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from autorag_dagster.settings import Settings

PACKAGED_LLM = "smollm2:135m"
PACKAGED_EMBED = "all-minilm"

Say = Callable[[str], None]


def ollama_answers(base_url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"{base_url}/api/version", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def ollama_or_local_server(settings: Settings, say: Say) -> Iterator[Settings]:
    """``settings`` as they are when an Ollama answers; otherwise the packaged local server.

    The local server listens where AUTORAG_OLLAMA_BASE_URL points when that is this machine,
    serves ``smollm2:135m`` and ``all-minilm``, and stops when the block ends.
    """
    if ollama_answers(settings.ollama_base_url):
        say(f"Using the Ollama server at {settings.ollama_base_url} ({settings.llm_model}, {settings.embed_model}).")
        yield settings
        return
    from autorag_dagster.localserve import SpawnedServer

    url = urlparse(settings.ollama_base_url)
    local = url.hostname in ("localhost", "127.0.0.1")
    port = (url.port or 11434) if local else 0
    say(
        f"No Ollama answers at {settings.ollama_base_url}: starting the packaged Ollama-compatible server "
        f"with {PACKAGED_LLM} and {PACKAGED_EMBED} (CPU)."
    )
    server = SpawnedServer(
        # Two slots, each llama.cpp context on one thread: the two cores of a small laptop.
        port=port, models_dir=settings.data_dir / "localserve-models", num_parallel=2, max_loaded_models=1,
    )
    with server:
        say(f"Local server: {server.url}")
        yield settings.model_copy(
            update={"ollama_base_url": server.url, "llm_model": PACKAGED_LLM, "embed_model": PACKAGED_EMBED,
                    "max_concurrency": 2}
        )


def ensure_models(settings: Settings, say: Say) -> None:
    """Pull whatever the run needs and the server lacks, with progress."""
    from autorag_dagster.ollama import OllamaClient

    with OllamaClient.from_settings(settings) as client:
        for model in client.missing_models([settings.llm_model, settings.embed_model]):
            say(f"Pulling {model} ...")
            client.pull(model)


@dataclass
class FileOutcome:
    key: str
    ok: bool
    error: str = ""
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunReport:
    settings: Settings
    files: list[FileOutcome]
    index_ok: bool
    dagster_home: Path

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files) and self.index_ok

    @property
    def viz_index(self) -> Path:
        return self.settings.data_dir / "viz" / "index.html"


def _step_seconds(result) -> dict[str, float]:
    """Wall seconds of each successful step of a run (from Dagster's step events)."""
    from dagster import DagsterEventType

    return {
        event.step_key: round(event.event_specific_data.duration_ms / 1000, 2)
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_SUCCESS
    }


def _failure_text(result) -> str:
    from dagster import DagsterEventType

    messages = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            messages.append(f"{event.step_key}: {error.message.strip()}")
    return "\n".join(messages) or "the run failed"


def run_folder(folder: Path, settings: Settings, say: Say) -> RunReport:
    """Materialise every asset (and its checks) for every audio file under ``folder``."""
    import time

    from dagster import AssetKey, DagsterInstance

    from autorag_dagster.core.keys import InvalidKeyError, discover_audio, validate_key
    from autorag_dagster.defs import build_definitions
    from autorag_dagster.defs.partitions import audio_files

    settings = settings.model_copy(update={"audio_dir": folder})
    keys = []
    for candidate in discover_audio(folder):
        try:
            validate_key(folder, candidate.key)
            keys.append(candidate.key)
        except InvalidKeyError as exc:
            say(f"Skipping: {exc}")
    if not keys:
        raise FileNotFoundError(f"No audio files (wav, flac, mp3, m4a, ogg, opus, webm, mp4) under {folder}")

    home = (settings.data_dir / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():  # embedded SQLite storage in this folder
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("process_audio")
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    outcomes = []
    with DagsterInstance.from_config(str(home)) as instance:
        known = set(instance.get_dynamic_partitions(audio_files.name))
        if new := [k for k in keys if k not in known]:
            instance.add_dynamic_partitions(audio_files.name, new)
        for number, key in enumerate(keys, 1):
            say(f"[{number}/{len(keys)}] {key}")
            started = time.perf_counter()
            result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_config=quiet)
            elapsed = time.perf_counter() - started
            failed_checks = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
            error = "" if result.success else _failure_text(result)
            if failed_checks:
                error = (error + "\n" if error else "") + f"failed checks: {', '.join(failed_checks)}"
            outcomes.append(FileOutcome(key, result.success and not failed_checks, error, elapsed, _step_seconds(result)))
        index_ok = False
        if any(o.ok for o in outcomes):
            say("Indexing the LanceDB table (full text, vectors, compaction) ...")
            index_job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={AssetKey("lancedb_index")})
            index_ok = index_job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet).success
    return RunReport(settings, outcomes, index_ok, home)
