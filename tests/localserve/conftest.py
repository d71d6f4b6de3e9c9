"""Fixtures for the local server's tests: the reusable plugin fixtures plus an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from autorag_dagster.localserve.pytest_fixtures import (  # noqa: F401
    local_ollama,
    local_ollama_client,
    local_ollama_factory,
    local_ollama_process,
)


@pytest.fixture
def http(local_ollama) -> Iterator[httpx.Client]:  # noqa: F811 (the imported fixture)
    with httpx.Client(base_url=local_ollama.url, timeout=30) as client:
        yield client
