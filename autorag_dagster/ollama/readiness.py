"""Readiness: the required models are listed in /api/tags (an answering server is not enough).

The message says plainly when the server is this project's packaged one (``autorag
ollama-serve``, not Ollama) and which backend runs each required model there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import OllamaError, pull_commands
from autorag_dagster.ollama.identity import ServerIdentity, backend_label, identify_server

IDENTIFY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Readiness:
    """``missing`` lists every required model when the server cannot be reached (``reachable`` False).

    ``packaged``: the server is the project's packaged one; ``backends`` then maps each pulled
    required model to the backend that runs it there.
    """

    ready: bool
    message: str
    missing: list[str] = field(default_factory=list)
    reachable: bool = True
    packaged: bool = False
    backends: dict[str, str] = field(default_factory=dict)


def describe_models(models: Iterable[str], identity: ServerIdentity) -> str:
    """``a, b`` on Ollama; ``a (llama.cpp on the CPU), b (...)`` on the packaged server."""
    if not identity.packaged:
        return ", ".join(models)
    return ", ".join(f"{m} ({backend_label(identity.backend(m))})" if identity.backend(m) else m for m in models)


def check_models(client: OllamaClient, required: Iterable[str]) -> Readiness:
    """Whether every required model is pulled; the message names what is missing and how to pull it."""
    required = list(dict.fromkeys(required))
    try:
        missing = client.missing_models(required)
    except OllamaError as exc:
        return Readiness(False, str(exc), list(required), reachable=False)
    identity = identify_server(client.base_url, timeout=min(client.timeout, IDENTIFY_TIMEOUT_S))
    where = (
        f"the packaged autorag server (not Ollama; {identity.version}) at {client.base_url}"
        if identity.packaged
        else f"the Ollama server at {client.base_url}"
    )
    backends = {m: b for m in required if (b := identity.backend(m))}
    if missing:
        pulled = [m for m in required if m not in missing]
        also = f" Pulled there: {describe_models(pulled, identity)}." if pulled and identity.packaged else ""
        return Readiness(
            False,
            f"Models not pulled on {where}: {', '.join(missing)}. Pull them with {pull_commands(missing)}.{also}",
            missing,
            packaged=identity.packaged,
            backends=backends,
        )
    return Readiness(
        True,
        f"All required models are pulled on {where}: {describe_models(required, identity)}.",
        packaged=identity.packaged,
        backends=backends,
    )
