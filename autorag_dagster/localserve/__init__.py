"""An Ollama-compatible HTTP server with Ollama's scheduler semantics and pluggable backends.

It serves the catalogue's models once "pulled" (a manifest in the models directory), loads
them on first use, honours num_ctx reloads, keep_alive, NUM_PARALLEL slots,
MAX_LOADED_MODELS eviction and the MAX_QUEUE bound, and records what it does in an event log.

    with LocalServer(num_parallel=8, pulled=["gemma4:latest"], models_dir=tmp) as server:
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
