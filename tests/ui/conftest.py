"""``dagster dev`` on loopback: the project's workspace, a temporary instance prepared as ``make dev``
prepares its own, temporary folders, and the local Ollama-compatible server in place of Ollama.

One ``dagster dev`` and one server serve every module of this folder (package scope)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from autorag_dagster.localserve import LocalServer
from autorag_dagster.runner import prepare_dagster_home
from tests.support.dagster_dev import (
    INSTANCE_YAML,
    REPO_ROOT,
    STARTUP_TIMEOUT_S,
    DagsterDev,
    free_port,
    loaded_repository,
    start_in_own_session,
    stop_process_group,
    wait_for,
)


@pytest.fixture(scope="package")
def ollama_server(tmp_path_factory) -> Iterator[LocalServer]:
    with LocalServer(
        models_dir=tmp_path_factory.mktemp("ollama-models"),
        pulled=["gemma4:latest", "nomic-embed-text"],
        deterministic=True,
        stand_in_names=True,  # the deterministic backend under the default names, on purpose
        test_routes=True,  # the run test scripts punctuated titles through /_autorag/script
    ) as server:
        yield server


@pytest.fixture(scope="package")
def dagster_dev(tmp_path_factory, ollama_server: LocalServer) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("dagster-dev")
    home, audio_dir, data_dir = root / "dagster_home", root / "audio", root / "data"
    for folder in (home, audio_dir, data_dir):
        folder.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)  # an older file, brought up to date as `make dev` does
    prepare_dagster_home(home)
    backfill_cron = "17 3 * * *"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTORAG_")},
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "AUTORAG_OLLAMA_BASE_URL": ollama_server.url,
        "AUTORAG_AUDIO_DIR": str(audio_dir),
        "AUTORAG_DATA_DIR": str(data_dir),
        "AUTORAG_BACKFILL_CRON": backfill_cron,
        "PYANNOTE_METRICS_ENABLED": "false",
        "OMP_NUM_THREADS": "1",
        # the code server and the run workers import this checkout, not an installed copy
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    port = free_port()
    command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]
    log_path = root / "dagster-dev.log"
    with log_path.open("wb") as log:
        process = start_in_own_session(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    dev = DagsterDev(f"http://127.0.0.1:{port}", process, log_path, audio_dir, backfill_cron)
    try:
        try:
            dev.repository = wait_for(
                lambda: loaded_repository(dev), "`dagster dev` serving the code location", STARTUP_TIMEOUT_S
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n`dagster dev` output:\n{dev.log_tail()}") from None
        yield dev
    finally:
        stop_process_group(process)
