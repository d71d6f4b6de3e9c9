"""``OllamaClient`` instances with the settings the client tests expect (fast retries, 8 in flight)."""

from __future__ import annotations

from autorag_dagster.ollama import OllamaClient
from tests.support.models import EMBED, LLM


def make_client(url: str, **overrides) -> OllamaClient:
    options = dict(
        llm_model=LLM,
        embed_model=EMBED,
        num_ctx=8192,
        keep_alive="5m",
        timeout=30,
        request_retries=2,
        validation_retries=2,
        max_concurrency=8,
        backoff_s=0.05,
    )
    return OllamaClient(url, **{**options, **overrides})
