"""``dagster dev`` as a child process: start it in its own session, wait for its code location,
talk GraphQL to it, and stop its whole process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

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
