"""Fixtures of the topic-tree tests: synthetic transcripts, the local Ollama-compatible server, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from autorag_dagster.core.types import SpeakerTranscript
from autorag_dagster.localserve import LocalServer
from autorag_dagster.ollama import OllamaClient
from tests.support.models import EMBED, LLM
from tests.support.ollama_clients import make_client as new_client
from tests.support.synthetic_transcripts import TEN_MINUTES, make_transcript


@pytest.fixture
def ten_minutes() -> SpeakerTranscript:
    return make_transcript(TEN_MINUTES)


@pytest.fixture
def start_server(tmp_path) -> Iterator[Callable[..., LocalServer]]:
    """A real server over HTTP: 8 slots, one resident model, both models pulled, a small delay per request."""
    with ExitStack() as stack:

        def start(**overrides) -> LocalServer:
            options = dict(
                num_parallel=8,
                max_loaded_models=1,
                models_dir=tmp_path / "models",
                pulled=[LLM, EMBED],
                delay=0.05,
                deterministic=True,
                stand_in_names=True,  # the deterministic backend answers as LLM and EMBED, on purpose
                test_routes=True,
            )
            return stack.enter_context(LocalServer(**{**options, **overrides}))

        yield start


@pytest.fixture
def server(start_server) -> LocalServer:
    return start_server()


@pytest.fixture
def make_client() -> Iterator[Callable[..., OllamaClient]]:
    with ExitStack() as stack:

        def make(url: str, **overrides) -> OllamaClient:
            return stack.enter_context(new_client(url, **{"backoff_s": 0.01, **overrides}))

        yield make


@pytest.fixture
def client(server, make_client) -> OllamaClient:
    return make_client(server.url)
