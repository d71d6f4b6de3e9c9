"""Fixtures for the local server's tests: an HTTP client on ``local_ollama`` (tests/support/localserve_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def http(local_ollama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_ollama.url, timeout=30) as client:
        yield client
