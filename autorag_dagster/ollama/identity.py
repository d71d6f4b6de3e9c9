"""Which server answers at a base URL: a real Ollama, or this project's packaged Ollama-compatible server.

The packaged server (``autorag ollama-serve``) reports ``/api/version`` as Ollama's API version
with ``+autorag-localserve`` appended: semver build metadata (a PEP 440 local version), so
clients that parse or compare the version still read the API version it follows. It also names
the backend that runs each model in ``details.backend`` of /api/tags (an extra field that
Ollama clients ignore).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from autorag_dagster.ollama.names import canonical_name

PACKAGED_SERVER_MARK = "autorag-localserve"
"""The build metadata in the packaged server's version string."""

BACKEND_LABELS = {
    "llama_cpp": "llama.cpp on the CPU",
    "sentence_transformers": "sentence-transformers on the CPU",
    "deterministic": "deterministic test backend, not a language model",
}
"""How people see each backend of the packaged server."""


def packaged_version(api_version: str) -> str:
    """The version string the packaged server reports for the Ollama API version it follows."""
    return f"{api_version}+{PACKAGED_SERVER_MARK}"


def is_packaged_version(version: str | None) -> bool:
    return bool(version) and version.partition("+")[2] == PACKAGED_SERVER_MARK


def backend_label(backend: str | None) -> str:
    return BACKEND_LABELS.get(backend or "", backend or "unknown")


@dataclass(frozen=True)
class ServerIdentity:
    """What answers at ``base_url``. ``backends`` (packaged server only): pulled model -> backend."""

    base_url: str
    version: str | None  # None when nothing answered
    backends: dict[str, str] = field(default_factory=dict)

    @property
    def packaged(self) -> bool:
        return is_packaged_version(self.version)

    @property
    def description(self) -> str:
        if self.version is None:
            return f"no server answering at {self.base_url}"
        if self.packaged:
            return f"the packaged autorag server (not Ollama; {self.version}) at {self.base_url}"
        return f"the Ollama server at {self.base_url} (version {self.version})"

    def backend(self, model: str) -> str | None:
        return self.backends.get(canonical_name(model))


def identify_server(base_url: str, timeout: float = 3.0) -> ServerIdentity:
    """Ask ``base_url`` for /api/version (and, on the packaged server, /api/tags for the backends).

    Never raises: a server that does not answer gives ``version=None``.
    """
    base_url = base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base_url, timeout=timeout) as http:
            version = http.get("/api/version").raise_for_status().json().get("version")
            if not is_packaged_version(version):
                return ServerIdentity(base_url, version)
            models = http.get("/api/tags").raise_for_status().json().get("models") or []
    except (httpx.HTTPError, ValueError, AttributeError):
        return ServerIdentity(base_url, None)
    backends = {
        canonical_name(m.get("model") or m.get("name") or ""): (m.get("details") or {}).get("backend") or "unknown"
        for m in models
        if m.get("model") or m.get("name")
    }
    return ServerIdentity(base_url, version, backends)


def is_packaged_server(base_url: str, timeout: float = 3.0) -> bool:
    """Whether ``base_url`` is this project's packaged Ollama-compatible server (False if nothing answers)."""
    return identify_server(base_url, timeout).packaged
