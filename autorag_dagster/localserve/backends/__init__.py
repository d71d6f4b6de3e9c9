"""Backends that run models for the local server, looked up by the name a catalogue entry gives.

Backends are imported on first use, so a heavy library (llama.cpp, sentence-transformers) is
only imported when a model that needs it is loaded.
"""

from __future__ import annotations

from importlib import import_module

from .base import Backend, Completion, CompletionRequest, Embeddings, InputTooLong, LoadSpec, Runner

BACKENDS: dict[str, str] = {
    "deterministic": "autorag_dagster.localserve.backends.deterministic:DeterministicBackend",
    "llama_cpp": "autorag_dagster.localserve.backends.llama_cpp:LlamaCppBackend",
    "sentence_transformers": "autorag_dagster.localserve.backends.sentence_transformers:SentenceTransformersBackend",
}
"""Backend name -> ``module:factory``; the factory takes no arguments and returns a Backend."""


class UnknownBackend(KeyError):
    pass


def create_backend(name: str) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    module, _, factory = target.partition(":")
    return getattr(import_module(module), factory)()


__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "CompletionRequest",
    "Embeddings",
    "InputTooLong",
    "LoadSpec",
    "Runner",
    "UnknownBackend",
    "create_backend",
]
