"""Run the server from Python: in a background thread (``LocalServer``) or as a process (``LocalServer.spawn``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn

from .config import ServerConfig, env_for
from .server import OllamaApi, create_app


class ServerStartError(RuntimeError):
    pass


class LocalServer:
    """The Ollama-compatible server on ``127.0.0.1`` in a background thread; use it as a context manager.

    Keyword arguments override the OLLAMA_* / AUTORAG_LOCALSERVE_* environment (see ServerConfig);
    ``port=0`` picks a free port. ``url`` is the base URL to give an Ollama client.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config: Any):
        self.config = ServerConfig.from_env(**config)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.api: OllamaApi | None = None

    @classmethod
    def spawn(cls, **kwargs: Any) -> SpawnedServer:
        """The same server as a separate ``autorag ollama-serve`` process (for code that forks)."""
        return SpawnedServer(**kwargs)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> LocalServer:
        app = create_app(self.config)
        self.api = app.state.api
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"localserve-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise ServerStartError(f"the local Ollama-compatible server did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers ------------------------------------------------------------------------------
    def _api(self) -> OllamaApi:
        if self.api is None:
            raise RuntimeError("the server is not started")
        return self.api

    def events(self, kind: str | None = None, since: int = 0, model: str | None = None) -> list[dict[str, Any]]:
        return self._api().events.select(kind, since, model)

    def clear_events(self) -> None:
        self._api().events.clear()

    def script(self, rules: Iterable[dict[str, Any]]) -> None:
        """Add scripted answers: ``[{"match": "...", "content": "...", "times": N}]``."""
        self._api().scripts.add(list(rules))

    def clear_script(self) -> None:
        self._api().scripts.clear()

    def pull(self, name: str) -> None:
        self._api().pull(name, source="python")


class SpawnedServer:
    """``autorag ollama-serve`` in a child process, with the same helpers as LocalServer (over HTTP)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models_dir: str | Path | None = None,
        pulled: Iterable[str] = (),
        deterministic: bool = False,
        stand_in_names: bool = False,
        test_routes: bool = False,
        **config: Any,
    ):
        for name in ("catalogue", "never_unload"):
            if name in config:
                raise TypeError(f"a spawned server takes no {name}; use LocalServer for that")
        pulled = tuple(pulled)
        flags = {"deterministic": deterministic, "stand_in_names": stand_in_names, "test_routes": test_routes}
        ServerConfig.from_env(models_dir=models_dir, pulled=pulled, **flags, **config)  # fail early
        self._host = host
        self._port = port or _free_port(host)
        self._args = [
            *(["--models-dir", str(models_dir)] if models_dir else []),
            *(a for name in pulled for a in ("--pull", name)),
            *("--" + name.replace("_", "-") for name, on in flags.items() if on),
        ]
        self._env = {**os.environ, **env_for(config)}
        self._process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> SpawnedServer:
        command = [
            sys.executable,
            "-m",
            "autorag_dagster.cli",
            "ollama-serve",
            "--host",
            self._host,
            "--port",
            str(self._port),
            *self._args,
        ]
        # stderr goes to a file, not a pipe: nobody reads it while the server runs, and a full pipe blocks it
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self._process = subprocess.Popen(command, env=self._env, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace")
                self.stop()
                raise ServerStartError(f"`{' '.join(command)}` exited:\n{output}")
            try:
                httpx.get(self.url, timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"the server process did not answer on {self.url} within 60 s")

    def output(self) -> str:
        """What the server process has written so far (its start-up lines, then uvicorn's log)."""
        if self._log is None:
            return ""
        fd = self._log.fileno()  # shared with the child: read without moving its write offset
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SpawnedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events(self, kind: str | None = None, since: int = 0, model: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"kind": kind, "since": since, "model": model}.items() if v}
        response = httpx.get(f"{self.url}/_autorag/events", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def clear_events(self) -> None:
        httpx.delete(f"{self.url}/_autorag/events", timeout=10).raise_for_status()

    def script(self, rules: Iterable[dict[str, Any]]) -> None:
        httpx.post(f"{self.url}/_autorag/script", json={"rules": list(rules)}, timeout=10).raise_for_status()

    def clear_script(self) -> None:
        httpx.delete(f"{self.url}/_autorag/script", timeout=10).raise_for_status()

    def pull(self, name: str) -> None:
        httpx.post(f"{self.url}/api/pull", json={"model": name, "stream": False}, timeout=10).raise_for_status()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
