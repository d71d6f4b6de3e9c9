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

from autorag_dagster.core.atomic import write_text
from autorag_dagster.settings import Settings

PACKAGED_LLM = "smollm2:135m"
PACKAGED_EMBED = "all-minilm"
PACKAGED_SLOTS = 2
"""Requests the packaged server answers at once: two slots, each llama.cpp context on one thread,
the two cores of a small laptop (the LLM runs alone: the stages are sequenced)."""

Say = Callable[[str], None]


def packaged(settings: Settings, base_url: str | None = None) -> Settings:
    """``settings`` with the packaged models (and the packaged server's URL when given)."""
    update = {"llm_model": PACKAGED_LLM, "embed_model": PACKAGED_EMBED, "max_concurrency": PACKAGED_SLOTS}
    return settings.model_copy(update={**update, **({"ollama_base_url": base_url} if base_url else {})})


@contextmanager
def ollama_or_local_server(settings: Settings, say: Say, *, own_port: bool = False) -> Iterator[Settings]:
    """``settings`` as they are when an Ollama answers; otherwise the packaged local server.

    The local server serves ``smollm2:135m`` and ``all-minilm`` from the models folder under the
    data directory (so what one command pulled, the next finds), listens where
    AUTORAG_OLLAMA_BASE_URL points when that is this machine (on a free port with
    ``own_port``), and stops when the block ends.
    """
    from autorag_dagster.ollama.identity import identify_server

    identity = identify_server(settings.ollama_base_url)
    if identity.version is not None:
        say(f"Using {identity.description} ({settings.llm_model}, {settings.embed_model}).")
        yield settings
        return
    from autorag_dagster.localserve import SpawnedServer

    url = urlparse(settings.ollama_base_url)
    local = url.hostname in ("localhost", "127.0.0.1")
    port = (url.port or 11434) if local and not own_port else 0
    say(
        f"No Ollama answers at {settings.ollama_base_url}: starting the packaged Ollama-compatible server "
        f"with {PACKAGED_LLM} and {PACKAGED_EMBED} (CPU)."
    )
    server = SpawnedServer(
        port=port,
        models_dir=settings.layout.localserve_models,
        num_parallel=PACKAGED_SLOTS,
        max_loaded_models=1,
    )
    with server:
        for line in server.output().splitlines():
            if line.strip():
                say(line.strip())
        say(f"Local server: {server.url}")
        yield packaged(settings, server.url)


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
    left_out: bool = False  # never run: not a valid key, or not audio


@dataclass
class RunReport:
    settings: Settings
    files: list[FileOutcome]
    index_ok: bool
    dagster_home: Path
    runs: int = 0
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    model_loads: dict[str, int] = field(default_factory=dict)
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files) and self.index_ok

    @property
    def viz_index(self) -> Path:
        return self.settings.layout.viz_index


def run_folder(
    folder: Path, settings: Settings, say: Say, progress: Callable[[str, str], None] | None = None
) -> RunReport:
    """Materialise every asset (and its checks) for every audio file under ``folder``.

    Files that do not open as audio are left out first (each named with the reason; files whose
    extension is not one of an audio or video container are named together); the rest
    go through the graph stage by stage, so each model loads once for the folder: the speech
    assets in one Dagster run, then the library's voices (identities across every file), then
    the assets that show speaker names (speaker transcript, topics, embeddings, pages) in one
    more run, then the LanceDB index. A file that fails inside a step fails alone: the others
    finish, and it is run again by itself.
    Dagster's step logs go to ``<data>/logs/runs.log``; ``progress(stage, detail)`` hears each
    step start and each file a step reaches.
    """
    import time

    from autorag_dagster.core.audio import AudioDecodeError, probe
    from autorag_dagster.core.keys import other_files, supported_list, valid_keys
    from autorag_dagster.defs.jobs import NAMED_ASSETS, SPEECH_ASSETS
    from autorag_dagster.runner import EmbeddedDagster, FolderRun, step_seconds

    settings = settings.model_copy(update={"audio_dir": str(folder)})
    candidates, rejected = valid_keys(folder)
    outcomes = [FileOutcome(exc.key, False, f"{exc.reason}; rename or move the file.", True) for exc in rejected]
    keys = []
    for candidate in candidates:
        try:
            probe(Path(folder) / candidate.key)
        except AudioDecodeError as exc:
            outcomes.append(
                FileOutcome(candidate.key, False, f"{exc}. Replace the file or remove it from the folder.", True)
            )
        else:
            keys.append(candidate.key)
    ignored = other_files(folder)
    if not candidates:
        raise FileNotFoundError(
            f"No audio files under {folder}"
            + (f" ({len(ignored)} other file(s), e.g. {', '.join(ignored[:3])})" if ignored else "")
            + f"; accepted: {supported_list()}"
        )
    for outcome in outcomes:
        say(f"Leaving out {outcome.key}: {outcome.error}")
    if ignored:
        shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
        say(f"Not audio by their extension, left out: {shown} (accepted: {supported_list()}).")

    home = settings.layout.dagster_home.resolve()
    report = RunReport(settings, outcomes, False, home)
    write_text(settings.layout.audio_folder_note, str(Path(folder).resolve()) + "\n")
    if not keys:
        return report
    started = time.perf_counter()
    log_file = settings.layout.run_log
    with EmbeddedDagster(settings, home=home, log_file=log_file, progress=progress) as dagster:
        dagster.register(keys)
        say(
            f"Processing {len(keys)} file(s) stage by stage: speech in one run, the voices across the "
            "library, then topics, search and pages in one more run; each model loads once."
        )
        speech = dagster.run_folder(keys, SPEECH_ASSETS)
        diarized = [k for k in speech.keys if not speech.errors.get(k)]
        library = []
        if diarized:
            library.append(dagster.voices())  # identities first, so the files show them at once
            if not library[-1].success:
                say("Recognising voices across the library failed: the files show their own speaker labels.")
        rest = dagster.run_folder(diarized, NAMED_ASSETS) if diarized else FolderRun(keys=[])
        folder_run = FolderRun(
            keys=speech.keys,
            results=speech.results + rest.results,
            failed_once=speech.failed_once | rest.failed_once,
            errors={**speech.errors, **rest.errors},
        )
        for key in folder_run.keys:
            error = folder_run.errors.get(key, "")
            report.files.append(FileOutcome(key, not error, error))
        if any(f.ok for f in report.files):
            say("Indexing the LanceDB table (full text, vectors, compaction) ...")
            report.index_ok = dagster.index().success
    report.runs = len(folder_run.results) + len(library)
    report.seconds = round(time.perf_counter() - started, 2)
    report.step_seconds = step_seconds(folder_run.results + library)
    report.model_loads = folder_run.model_loads()
    report.log_file = log_file
    report.files.sort(key=lambda f: f.key)
    return report


def apply_speakers(settings: Settings, say: Say) -> bool:
    """Re-materialise what ``speakers.yaml`` and the voices changed, in the main job's Dagster
    storage (what `autorag run` used): only the assets that show names, for the files whose names
    changed (and the diarization of files whose speaker-count hints changed); then the index."""
    from autorag_dagster.core.speakers import pending_renames
    from autorag_dagster.runner import EmbeddedDagster, succeeded

    plan = pending_renames(settings.layout, settings.speakers_file)
    if not plan.files:
        say("Every file already shows its speakers' current names.")
        return True
    say(f"Updating the names of {len(plan.names)} file(s), the diarization of {len(plan.hints)} ...")
    home = settings.layout.dagster_home.resolve()
    with EmbeddedDagster(settings, home=home, log_file=settings.layout.run_log) as dagster:
        dagster.register(plan.files)
        results = dagster.apply_speakers()
        ok = all(succeeded(r) for r in results)
        if ok:
            ok = dagster.index().success
    say("Done." if ok else f"Something failed: see {settings.layout.run_log}")
    return ok


def library_settings(settings: Settings, folder: Path | None = None) -> Settings:
    """``settings`` for the audio folder ``folder``, else the one `autorag run` last ran on, else
    AUTORAG_AUDIO_DIR: where `autorag speakers` finds speakers.yaml."""
    if folder is None:
        try:
            folder = Path(settings.layout.audio_folder_note.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return settings
    return settings.model_copy(update={"audio_dir": str(folder)})
