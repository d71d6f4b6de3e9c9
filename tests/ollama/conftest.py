"""A real local Ollama-compatible server per test, and clients pointed at it over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from autorag_dagster.localserve import LocalServer
from autorag_dagster.ollama import OllamaClient
from tests.support.ollama_clients import make_client


@pytest.fixture
def start_server(local_ollama_factory) -> Callable[..., LocalServer]:
    """Start a server: 8 slots, one resident model, both models pulled, 50 ms per request."""

    def start(**overrides) -> LocalServer:
        return local_ollama_factory(**{"max_loaded_models": 1, "delay": 0.05, **overrides})

    return start


@pytest.fixture
def server(start_server) -> LocalServer:
    return start_server()


@pytest.fixture
def client(server) -> Iterator[OllamaClient]:
    with make_client(server.url) as client:
        yield client


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens: the port was bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
