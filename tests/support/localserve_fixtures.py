"""Pytest fixtures that run the local Ollama-compatible server; a plugin registered once in
``tests/conftest.py`` (``pytest_plugins``), so every test folder can ask for them by name:

- ``local_ollama_factory(**overrides)`` starts an in-process server (stopped after the test);
  defaults: 8 slots, the test routes on, and the deterministic backend opted in under the
  stand-in names ``gemma4:latest`` and ``nomic-embed-text:latest`` (``stand_in_names``: the
  names the pipeline is configured with on GPU hosts), both pulled into a temporary models
  directory. The packaged models (smollm2:135m, all-minilm) are offered too.
- ``local_ollama``: one such server with the defaults.
- ``local_ollama_process``: the same, as an ``autorag ollama-serve`` child process.
- ``local_ollama_client``: an ``ollama.Client`` pointed at ``local_ollama``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import ollama
import pytest

from autorag_dagster.localserve import LocalServer, SpawnedServer

DEFAULT_MODELS = ("gemma4:latest", "nomic-embed-text:latest")
# Every setting the environment could change is explicit, so tests do not depend on OLLAMA_* variables.
DEFAULTS: dict[str, Any] = dict(
    num_parallel=8,
    max_loaded_models=3,
    keep_alive="5m",
    max_queue=512,
    kv_cache_type="f16",
    context_length=4096,
    delay=0.0,
    load_delay=0.0,
    unload_delay=0.0,
    pulled=DEFAULT_MODELS,
    deterministic=True,
    stand_in_names=True,  # on purpose: the deterministic backend answers as gemma4 and nomic-embed-text
    test_routes=True,
)


@pytest.fixture
def local_ollama_factory(tmp_path_factory) -> Iterator[Callable[..., LocalServer]]:
    with ExitStack() as stack:

        def start(**overrides: Any) -> LocalServer:
            options = {**DEFAULTS, "models_dir": tmp_path_factory.mktemp("ollama-models"), **overrides}
            return stack.enter_context(LocalServer(**options))

        yield start


@pytest.fixture
def local_ollama(local_ollama_factory) -> LocalServer:
    return local_ollama_factory()


@pytest.fixture
def local_ollama_process(tmp_path_factory) -> Iterator[SpawnedServer]:
    options = {**DEFAULTS, "models_dir": tmp_path_factory.mktemp("ollama-models")}
    with LocalServer.spawn(**options) as server:
        yield server


@pytest.fixture
def local_ollama_client(local_ollama) -> ollama.Client:
    return ollama.Client(host=local_ollama.url, timeout=30)
