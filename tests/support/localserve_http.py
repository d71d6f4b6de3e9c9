"""HTTP helpers for the local server's tests: request bodies, NDJSON streams, concurrent posts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx

from tests.support.models import LLM

SMALL = "deterministic-tiny"  # completion only: no thinking, not pulled by default


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def chat_body(model: str = LLM, text: str = "Hello there", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": False, "think": False, **extra}


def post_concurrently(url: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """POST every body at once (one connection each) and return the responses in order."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(client.post(path, json=body) for body in bodies))

    return asyncio.run(run())


def wait_for(condition: Callable[[], object], timeout: float = 10.0, message: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
