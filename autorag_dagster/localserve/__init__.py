"""An Ollama-compatible HTTP server with Ollama's scheduler semantics and pluggable backends.

It serves the catalogue's models once "pulled" (a manifest in the models directory), loads
them on first use, honours num_ctx reloads, keep_alive (asynchronous unloads with
``unload_delay``), NUM_PARALLEL slots, MAX_LOADED_MODELS eviction and the MAX_QUEUE bound,
and records what it does in an event log.

By default it offers only what it really runs: ``smollm2:135m`` (llama.cpp) and ``all-minilm``
(sentence-transformers). ``deterministic=True`` adds the deterministic test backend as
``deterministic-llm`` / ``deterministic-embed``; ``stand_in_names=True`` (tests only) lets it
answer as ``gemma4:latest`` / ``nomic-embed-text:latest``. /api/version reports
``0.32.15+autorag-localserve``, and every model's ``details.backend`` names what runs it.

    with LocalServer(num_parallel=8, deterministic=True, pulled=["deterministic-llm"], models_dir=tmp) as server:
        ollama.Client(server.url).chat(...)
        server.events(kind="load")
"""

from .catalogue import DEFAULT_CATALOGUE, Catalogue, ModelSpec
from .config import ConfigError, ServerConfig
from .events import EventLog, max_in_flight
from .handle import LocalServer, ServerStartError, SpawnedServer

__all__ = [
    "DEFAULT_CATALOGUE",
    "Catalogue",
    "ConfigError",
    "EventLog",
    "LocalServer",
    "ModelSpec",
    "ServerConfig",
    "ServerStartError",
    "SpawnedServer",
    "max_in_flight",
]
