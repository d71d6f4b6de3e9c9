"""``dagster dev`` on loopback: the project's workspace, a temporary instance and folders, and the
local Ollama-compatible server in place of Ollama."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from autorag_dagster.localserve import LocalServer

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION = "autorag_dagster"  # location_name in workspace.yaml
STARTUP_TIMEOUT_S = 120.0
SHUTDOWN_GRACE_S = 30.0
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float) -> T:
    """Call ``condition`` until it returns something truthy (connection errors count as not yet)."""

    def give_up(state) -> T:
        last = state.outcome.exception() or state.outcome.result()
        raise TimeoutError(f"{what} did not happen within {timeout:.0f} s; last outcome: {last!r}")

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.5),
        retry=retry_if_result(lambda result: not result) | retry_if_exception_type(httpx.TransportError),
        retry_error_callback=give_up,
    )
    return retrying(condition)


@dataclass
class DagsterDev:
    url: str
    process: subprocess.Popen
    log_path: Path
    audio_dir: Path
    backfill_cron: str
    repository: str = ""

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"`dagster dev` exited with code {self.process.returncode}:\n{self.log_tail()}")

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if body.get("errors") or response.is_error:
            raise AssertionError(f"GraphQL answered {response.status_code}: {body.get('errors') or response.text}")
        return body["data"]

    def selector(self, **extra: str) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": self.repository, **extra}


WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""


def loaded_repository(dev: DagsterDev) -> str | None:
    """The repository name once the code location has loaded; fails at once on a load error."""
    dev.check_alive()
    httpx.get(f"{dev.url}/server_info", timeout=10).raise_for_status()
    workspace = dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    entry = next((e for e in workspace.get("locationEntries", []) if e["name"] == LOCATION), None)
    if entry is None or entry["loadStatus"] != "LOADED":
        return None
    location = entry["locationOrLoadError"]
    if location["__typename"] != "RepositoryLocation":
        raise RuntimeError(f"the code location {LOCATION!r} failed to load:\n{location.get('message')}")
    return location["repositories"][0]["name"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_in_own_session(command: list[str], **popen: Any) -> subprocess.Popen:
    """Start ``command`` as the leader of a new session, so that its whole process tree can be signalled.

    ``dagster dev`` maps SIGTERM to its SIGINT handler; a process started while SIGINT is ignored
    (pytest run from a backgrounded shell job) would inherit "ignored" and never stop on SIGTERM.
    A Python-level handler is reset to the default at exec, so the child gets a working SIGINT.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, start_new_session=True, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)


def live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (fields after the command name: state, ppid, pgrp)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            state, _, pgrp, *_ = stat.read_text().rsplit(")", 1)[1].split()
            if int(pgrp) == pgid and state != "Z":
                members.append(int(stat.parent.name))
    return members


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group, SIGKILL to whatever is left after the grace period; no survivors."""
    pgid = process.pid
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=SHUTDOWN_GRACE_S)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()
    wait_for(lambda: not live_members(pgid), f"the end of every process in group {pgid}", 10)


@pytest.fixture(scope="module")
def ollama_server(tmp_path_factory) -> Iterator[LocalServer]:
    with LocalServer(
        models_dir=tmp_path_factory.mktemp("ollama-models"), pulled=["gemma4:latest", "nomic-embed-text"]
    ) as server:
        yield server


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory, ollama_server: LocalServer) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("dagster-dev")
    home, audio_dir, data_dir = root / "dagster_home", root / "audio", root / "data"
    for folder in (home, audio_dir, data_dir):
        folder.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
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
