"""Readiness: the required models are listed in /api/tags (an answering server is not enough)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import OllamaError, pull_commands


@dataclass(frozen=True)
class Readiness:
    """``missing`` lists every required model when the server cannot be reached (``reachable`` False)."""

    ready: bool
    message: str
    missing: list[str] = field(default_factory=list)
    reachable: bool = True


def check_models(client: OllamaClient, required: Iterable[str]) -> Readiness:
    """Whether every required model is pulled; the message names what is missing and how to pull it."""
    required = list(dict.fromkeys(required))
    try:
        missing = client.missing_models(required)
    except OllamaError as exc:
        return Readiness(False, str(exc), list(required), reachable=False)
    if missing:
        return Readiness(
            False,
            f"Models not pulled on the Ollama server at {client.base_url}: {', '.join(missing)}."
            f" Pull them with {pull_commands(missing)}.",
            missing,
        )
    return Readiness(True, f"All required models are pulled on {client.base_url}: {', '.join(required)}.")
