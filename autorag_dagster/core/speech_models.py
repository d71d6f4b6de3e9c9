"""The speech models a GPU host downloads once: the Whisper model and the pyannote pipeline.

``fetch`` downloads what the settings name into the Hugging Face cache (``HF_HOME``; the Docker
stack keeps it on its ``models`` volume), with progress bars, and then proves that the loaders
find it: Whisper through faster-whisper's own offline lookup (what ``WhisperModel`` calls), the
pyannote pipeline by loading it (``PyannoteDiarizer.load``, the diarization asset's own path).
``status`` says what is present without downloading anything. The packaged models of a laptop
(``tiny.en``, Resemblyzer) need no download and are reported as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from autorag_dagster.core.diarize.base import DiarizerConfig, DiarizerError
from autorag_dagster.core.diarize.pyannote_backend import HUB_NAME, PyannoteDiarizer, hf_token
from autorag_dagster.core.transcribe import PACKAGED_MODEL, WhisperConfig, packaged_model_dir

# The files faster_whisper.utils.download_model asks the hub for (faster-whisper 1.2.1). It
# downloads them with progress bars switched off, so `fetch` asks for the same files itself.
WHISPER_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
PIPELINE_CONFIG = "config.yaml"
PULL_HINT = "./scripts/stack.sh pull, or autorag speech-models --fetch"


class SpeechModelError(RuntimeError):
    """A speech model could not be fetched; the message says which and what to do."""


@dataclass(frozen=True)
class ModelState:
    role: str  # "whisper" or "diarizer"
    name: str  # as the settings give it
    state: str  # packaged, local folder, present, missing
    where: str  # a path, or what to do

    @property
    def ready(self) -> bool:
        return self.state != "missing"


# --- Whisper ---------------------------------------------------------------------------------
def whisper_repo(name: str) -> str:
    """The hub repository faster-whisper downloads ``name`` from (a size such as large-v3-turbo, or an id)."""
    from faster_whisper.utils import _MODELS

    if "/" in name:
        return name
    if name not in _MODELS:
        raise SpeechModelError(
            f"AUTORAG_WHISPER_MODEL={name!r} is neither a faster-whisper model name ({', '.join(_MODELS)}), "
            "a hub id (owner/name) nor a local folder."
        )
    return _MODELS[name]


def whisper_state(name: str, cache_dir: str | Path | None = None) -> ModelState:
    if name == PACKAGED_MODEL:
        return ModelState("whisper", name, "packaged", str(packaged_model_dir()))
    local = Path(name).expanduser()
    if local.is_dir():
        found = (local / "model.bin").is_file()
        return ModelState("whisper", name, "local folder" if found else "missing", str(local))
    from faster_whisper.utils import download_model

    whisper_repo(name)  # an unknown name is an error, not "missing"
    try:  # the lookup WhisperModel makes, offline
        path = Path(download_model(name, local_files_only=True, cache_dir=_str(cache_dir)))
    except Exception:  # noqa: BLE001 - huggingface_hub raises several kinds for "not cached"
        return ModelState("whisper", name, "missing", f"not downloaded: run {PULL_HINT}")
    if not (path / "model.bin").is_file():
        return ModelState("whisper", name, "missing", f"incomplete at {path}: run {PULL_HINT}")
    return ModelState("whisper", name, "present", str(path))


def fetch_whisper(name: str, cache_dir: str | Path | None = None) -> ModelState:
    state = whisper_state(name, cache_dir)
    if state.state in ("packaged", "local folder"):
        return state
    if state.state == "missing" and Path(name).expanduser().is_dir():
        raise SpeechModelError(f"Whisper model folder {name!r} has no model.bin (a CTranslate2 model folder has one).")
    repo = whisper_repo(name)
    try:
        _download(repo, allow_patterns=WHISPER_FILES, cache_dir=_str(cache_dir), token=hf_token())
    except Exception as exc:
        raise SpeechModelError(
            f"Could not download the Whisper model {name!r} ({repo}): {type(exc).__name__}: {exc}"
        ) from exc
    state = whisper_state(name, cache_dir)
    if not state.ready:
        raise SpeechModelError(
            f"Whisper model {name!r} was downloaded but faster-whisper does not find it: {state.where}"
        )
    return state


# --- pyannote --------------------------------------------------------------------------------
def _subfolders(config: object) -> set[str]:
    """The ``$model/<folder>`` entries of a pipeline's config.yaml: the models it loads from its own repository."""
    if isinstance(config, dict):
        return set().union(*(_subfolders(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(_subfolders(value) for value in config))
    if isinstance(config, str) and config.startswith("$model/"):
        return {config.removeprefix("$model/").split("@")[0]}
    return set()


def pipeline_state(config: DiarizerConfig, cache_dir: str | Path | None = None) -> ModelState:
    name = config.pyannote_pipeline
    if config.diarizer != "pyannote":
        return ModelState("diarizer", config.diarizer, "packaged", "its voice encoder ships in the resemblyzer wheel")
    local = Path(name).expanduser()
    if local.exists():
        found = (local / PIPELINE_CONFIG).is_file() if local.is_dir() else local.is_file()
        return ModelState("diarizer", name, "local folder" if found else "missing", str(local))
    if not HUB_NAME.fullmatch(name):
        return ModelState("diarizer", name, "missing", "neither a local folder nor a hub name")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, PIPELINE_CONFIG, cache_dir=_str(cache_dir))
    if not isinstance(cached, str):
        return ModelState("diarizer", name, "missing", f"not downloaded: run {PULL_HINT}")
    snapshot = Path(cached).parent
    needed = _subfolders(yaml.safe_load(Path(cached).read_text(encoding="utf-8")))
    absent = sorted(folder for folder in needed if not any((snapshot / folder).glob("*")))
    if absent:
        return ModelState("diarizer", name, "missing", f"{', '.join(absent)} not downloaded: run {PULL_HINT}")
    return ModelState("diarizer", name, "present", str(snapshot))


def fetch_pipeline(config: DiarizerConfig) -> ModelState:
    """Load the pipeline once on the CPU, as the diarization asset does: a hub pipeline is
    downloaded (with progress) into the Hugging Face cache by that load, and a local folder is
    proven to load."""
    if config.diarizer != "pyannote":
        return pipeline_state(config)
    diarizer = PyannoteDiarizer(pipeline=config.pyannote_pipeline, device="cpu", cpu_threads=config.cpu_threads)
    try:
        diarizer.load()
    except DiarizerError as exc:
        raise SpeechModelError(str(exc)) from exc
    finally:
        diarizer.close()
    state = pipeline_state(config)
    if not state.ready:
        raise SpeechModelError(
            f"pyannote pipeline {config.pyannote_pipeline!r} loaded but is not in the cache: {state.where}"
        )
    return state


# --- both ------------------------------------------------------------------------------------
def status(whisper: WhisperConfig, diarizer: DiarizerConfig, cache_dir: str | Path | None = None) -> list[ModelState]:
    return [whisper_state(whisper.whisper_model, cache_dir), pipeline_state(diarizer, cache_dir)]


def fetch(whisper: WhisperConfig, diarizer: DiarizerConfig, say: Callable[[str], None] = print) -> list[ModelState]:
    """Both models into the Hugging Face cache (``HF_HOME``), each checked as its loader finds it."""
    say(f"Whisper model {whisper.whisper_model}")
    states = [fetch_whisper(whisper.whisper_model)]
    say(f"Diarizer {diarizer.pyannote_pipeline if diarizer.diarizer == 'pyannote' else diarizer.diarizer}")
    states.append(fetch_pipeline(diarizer))
    return states


def _download(repo: str, **options) -> str:
    """huggingface_hub's snapshot download, progress bars included (tests replace this one name)."""
    from huggingface_hub import snapshot_download

    return snapshot_download(repo, **options)


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
