"""The main job on a laptop: the whole asset graph on a folder, with embedded defaults.

No GPU, no Docker and no Ollama needed: when nothing answers at AUTORAG_OLLAMA_BASE_URL the
packaged Ollama-compatible server starts with the packaged models (and says so); Dagster's
storage is a folder under the data directory; every result lands under the data directory.
The same graph runs unchanged against a real Ollama: only settings differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from autorag_dagster.settings import Settings

PACKAGED_LLM = "smollm2:135m"
PACKAGED_EMBED = "all-minilm"

Say = Callable[[str], None]


def ollama_answers(base_url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"{base_url}/api/version", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def ollama_or_local_server(settings: Settings, say: Say) -> Iterator[Settings]:
    """``settings`` as they are when an Ollama answers; otherwise the packaged local server.

    The local server listens where AUTORAG_OLLAMA_BASE_URL points when that is this machine,
    serves ``smollm2:135m`` and ``all-minilm``, and stops when the block ends.
    """
    if ollama_answers(settings.ollama_base_url):
        say(f"Using the Ollama server at {settings.ollama_base_url} ({settings.llm_model}, {settings.embed_model}).")
        yield settings
        return
    from autorag_dagster.localserve import SpawnedServer

    url = urlparse(settings.ollama_base_url)
    local = url.hostname in ("localhost", "127.0.0.1")
    port = (url.port or 11434) if local else 0
    say(
        f"No Ollama answers at {settings.ollama_base_url}: starting the packaged Ollama-compatible server "
        f"with {PACKAGED_LLM} and {PACKAGED_EMBED} (CPU)."
    )
    server = SpawnedServer(
        # Two slots, each llama.cpp context on one thread: the two cores of a small laptop.
        port=port, models_dir=settings.layout.localserve_models, num_parallel=2, max_loaded_models=1,
    )
    with server:
        say(f"Local server: {server.url}")
        yield settings.model_copy(
            update={"ollama_base_url": server.url, "llm_model": PACKAGED_LLM, "embed_model": PACKAGED_EMBED,
                    "max_concurrency": 2}
        )


def ensure_models(settings: Settings, say: Say, progress: Callable[[str], ContextManager] | None = None) -> None:
    """Pull whatever the run needs and the server lacks; ``progress(model)`` gives the display of each pull."""
    from autorag_dagster.ollama import OllamaClient

    with OllamaClient.from_config(settings.ollama_config) as client:
        for model in client.missing_models(settings.required_models):
            say(f"Pulling {model} ...")
            with progress(model) if progress is not None else nullcontext() as show:
                client.pull(model, show)


@dataclass
class FileOutcome:
    key: str
    ok: bool
    error: str = ""
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunReport:
    settings: Settings
    files: list[FileOutcome]
    index_ok: bool
    dagster_home: Path

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files) and self.index_ok

    @property
    def viz_index(self) -> Path:
        return self.settings.layout.viz_index


def run_folder(folder: Path, settings: Settings, say: Say) -> RunReport:
    """Materialise every asset (and its checks) for every audio file under ``folder``."""
    import time

    from autorag_dagster.core.keys import valid_keys
    from autorag_dagster.runner import INFO, EmbeddedDagster, failure_text, step_seconds, succeeded

    settings = settings.model_copy(update={"audio_dir": folder})
    candidates, rejected = valid_keys(folder)
    for exc in rejected:
        say(f"Skipping: {exc}")
    keys = [c.key for c in candidates]
    if not keys:
        raise FileNotFoundError(f"No audio files (wav, flac, mp3, m4a, ogg, opus, webm, mp4) under {folder}")

    outcomes = []
    home = settings.layout.dagster_home.resolve()
    with EmbeddedDagster(settings, home=home, run_config=INFO) as dagster:
        dagster.register(keys)
        for number, key in enumerate(keys, 1):
            say(f"[{number}/{len(keys)}] {key}")
            started = time.perf_counter()
            result = dagster.run_file(key)
            elapsed = time.perf_counter() - started
            error = failure_text(result) or ("" if result.success else "the run failed")
            outcomes.append(FileOutcome(key, succeeded(result), error, elapsed, step_seconds([result])))
        index_ok = False
        if any(o.ok for o in outcomes):
            say("Indexing the LanceDB table (full text, vectors, compaction) ...")
            index_ok = dagster.index().success
    return RunReport(settings, outcomes, index_ok, home)
