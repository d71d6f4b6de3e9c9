"""The ``autorag`` command line: thin typer commands; what they show is drawn by ``render``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer

app = typer.Typer(
    name="autorag",
    help="Turn folders of spoken audio into RAG assets (transcripts, speakers, topics, search).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("ollama-serve")
def ollama_serve(
    host: str = typer.Option(
        "127.0.0.1", help="Interface to bind; anything but loopback is warned about (no authentication)."
    ),
    port: int = typer.Option(11434, help="Port to listen on."),
    models_dir: Path = typer.Option(
        None,
        help="Where pulled models are recorded; default $OLLAMA_MODELS or ~/.cache/autorag/localserve-models.",
        show_default=False,
    ),
    pull: list[str] = typer.Option(
        None, "--pull", help="Mark this model as pulled at start-up; repeatable.", show_default=False
    ),
    delay: float = typer.Option(
        None, min=0, help="Seconds each request takes (AUTORAG_LOCALSERVE_DELAY).", show_default=False
    ),
    load_delay: float = typer.Option(
        None, min=0, help="Seconds each model load takes (AUTORAG_LOCALSERVE_LOAD_DELAY).", show_default=False
    ),
    unload_delay: float = typer.Option(
        None,
        min=0,
        show_default=False,
        help="Seconds an unload takes after its answer, as Ollama's asynchronous unload (AUTORAG_LOCALSERVE_UNLOAD_DELAY).",
    ),
    deterministic: bool = typer.Option(
        False,
        "--deterministic",
        help="Also offer the deterministic test models (deterministic-llm, deterministic-embed): not language models.",
    ),
    stand_in_names: bool = typer.Option(
        False,
        "--stand-in-names",
        hidden=True,
        help="Tests only: the deterministic backend also answers as gemma4:latest and nomic-embed-text:latest.",
    ),
    test_routes: bool = typer.Option(
        False, "--test-routes", hidden=True, help="Tests only: serve /_autorag/events and /_autorag/script."
    ),
) -> None:
    """Serve Ollama's HTTP API from packaged models (for laptops and CI; not needed on a GPU host).

    Offers only the models it really runs: smollm2:135m (llama.cpp) and all-minilm
    (sentence-transformers). /api/version reports <Ollama API version>+autorag-localserve.
    Honours OLLAMA_NUM_PARALLEL, OLLAMA_MAX_LOADED_MODELS, OLLAMA_KEEP_ALIVE, OLLAMA_MAX_QUEUE,
    OLLAMA_KV_CACHE_TYPE and OLLAMA_CONTEXT_LENGTH.
    """
    from autorag_dagster.localserve import ConfigError
    from autorag_dagster.localserve.server import serve

    try:
        serve(
            host=host,
            port=port,
            models_dir=models_dir,
            pulled=pull,
            delay=delay,
            load_delay=load_delay,
            unload_delay=unload_delay,
            deterministic=deterministic,
            stand_in_names=stand_in_names,
            test_routes=test_routes,
        )
    except ConfigError as exc:
        _fail(str(exc), code=2)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


def _settings():
    from autorag_dagster.settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as exc:
        _fail(str(exc), code=2)


@app.command("pull")
def pull(
    models: list[str] = typer.Argument(
        None, help="Models to pull; default: AUTORAG_LLM_MODEL and AUTORAG_EMBED_MODEL.", show_default=False
    ),
) -> None:
    """Pull models through the Ollama server at AUTORAG_OLLAMA_BASE_URL, showing progress."""
    from autorag_dagster.cli.render import pull_display
    from autorag_dagster.ollama import OllamaClient, OllamaError

    settings = _settings()
    with OllamaClient.from_config(settings.ollama_config) as client:
        for model in models or settings.required_models:
            try:
                with pull_display(model) as show:
                    client.pull(model, show)
            except OllamaError as exc:
                _fail(str(exc))
            typer.echo(f"pulled {model}")


@app.command("models")
def models() -> None:
    """Show whether the required models are pulled and which models are loaded (/api/ps).

    Exits 1 when a required model is missing or the server cannot be reached.
    """
    from autorag_dagster.cli import render
    from autorag_dagster.ollama import OllamaClient, OllamaError, canonical_name
    from autorag_dagster.ollama.errors import pull_commands
    from autorag_dagster.ollama.identity import identify_server

    settings = _settings()
    with OllamaClient.from_config(settings.ollama_config, request_retries=0) as client:
        try:
            pulled = {canonical_name(name) for name in client.pulled_models()}
            running = client.ps()
        except OllamaError as exc:
            _fail(str(exc))
    required = {"LLM": settings.llm_model, "embeddings": settings.embed_model}
    identity = identify_server(client.base_url)
    render.console.print(*render.models_tables(client.base_url, required, pulled, running, canonical_name, identity))
    missing = [model for model in required.values() if canonical_name(model) not in pulled]
    if missing:
        _fail(f"Missing: {', '.join(missing)}. Pull with {pull_commands(missing)}.")


@app.command("speech-models")
def speech_models(
    fetch: bool = typer.Option(
        False, "--fetch", help="Download what is missing first (with progress), then check it loads."
    ),
) -> None:
    """Show whether the Whisper model and the pyannote pipeline of the settings are present.

    AUTORAG_WHISPER_MODEL, AUTORAG_DIARIZER and AUTORAG_PYANNOTE_PIPELINE name them; downloads go
    to the Hugging Face cache (HF_HOME), with HF_TOKEN for the gated pyannote pipeline. The
    packaged models (tiny.en, resemblyzer) need nothing. Exits 1 when a model is missing or a
    download fails.
    """
    from autorag_dagster.cli import render
    from autorag_dagster.core import speech_models as models

    settings = _settings()
    try:
        if fetch:
            models.fetch(settings.whisper_config, settings.diarizer_config, say=render.say)
        states = models.status(settings.whisper_config, settings.diarizer_config)
    except models.SpeechModelError as exc:
        _fail(str(exc))
    for state in states:
        label = "MISSING" if not state.ready else state.state
        typer.echo(f"  {label:<12} {state.role:<8} {state.name}: {state.where}")
    missing = [state.name for state in states if not state.ready]
    if missing:
        _fail(f"Missing: {', '.join(missing)}. Fetch with {models.PULL_HINT}.")


class KvCacheType(StrEnum):
    f16 = "f16"
    q8_0 = "q8_0"
    q4_0 = "q4_0"


@app.command("tune")
def tune(
    vram_gb: float = typer.Option(
        None, "--vram-gb", min=1, show_default=False, help="The card's memory in GiB; default: read by nvidia-smi."
    ),
    whisper_gb: float = typer.Option(6.0, "--whisper-gb", min=0, help="GiB kept free for Whisper next to the LLM."),
    margin_gb: float = typer.Option(1.0, "--margin-gb", min=0, help="GiB kept free as a safety margin."),
    kv_type: KvCacheType = typer.Option(KvCacheType.q8_0, "--kv-type", help="OLLAMA_KV_CACHE_TYPE to plan for."),
    num_ctx: int = typer.Option(8192, "--num-ctx", min=256, help="Preferred per-slot context."),
    parallel: int = typer.Option(8, "--parallel", min=1, help="Most slots (OLLAMA_NUM_PARALLEL) to plan for."),
    measure: bool = typer.Option(
        False, "--measure", help="Load the LLM with the planned num_ctx; compare with /api/ps."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs instead of a table."),
) -> None:
    """Recommend OLLAMA_NUM_PARALLEL and num_ctx that fit the GPU next to Whisper, with lines for .env.

    Reads AUTORAG_LLM_MODEL and AUTORAG_EMBED_MODEL from the Ollama at AUTORAG_OLLAMA_BASE_URL
    (/api/tags, /api/show). --measure loads the LLM (then evicts it) to check the plan: run it
    once the server uses the recommended settings, and while no pipeline run uses the GPU.
    """
    from autorag_dagster.cli.render import console, plan_table
    from autorag_dagster.ollama import OllamaClient, OllamaError
    from autorag_dagster.ollama.planner import GIB, Gpu, PlanError, plan, plan_json, query_gpu, read_models
    from autorag_dagster.ollama.planner import measure as measure_load

    settings = _settings()
    try:
        gpu = Gpu.given(vram_gb) if vram_gb else query_gpu()
        if gpu is None:
            _fail(
                "nvidia-smi is not installed here: give the card's memory in GiB, e.g. `autorag tune --vram-gb 24`.",
                code=2,
            )
        with OllamaClient.from_config(settings.ollama_config, request_retries=0) as client:
            llm, embedder = read_models(client, [settings.llm_model, settings.embed_model])
            result = plan(
                llm,
                embedder,
                gpu,
                kv_type=kv_type.value,
                whisper_bytes=round(whisper_gb * GIB),
                margin_bytes=round(margin_gb * GIB),
                num_ctx=num_ctx,
                parallel=parallel,
            )
            measured = measure_load(client, result, llm) if measure else None
    except (PlanError, OllamaError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(plan_json(result, measured))
        return
    console.print(plan_table(result, measured))
    for line in result.reasoning:
        typer.echo(f"- {line}")
    if measured is not None:
        typer.echo(f"- {measured.summary}")
    typer.echo("\nPaste into .env (then restart Ollama):")
    for name, value in result.env.items():
        typer.echo(f"{name}={value}")


@app.command("run")
def run(
    folder: Path = typer.Argument(
        None,
        help="Folder of audio files; default: a generated two-minute sample meeting.",
        show_default=False,
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
    query: str = typer.Option(
        None, help="The sample search printed at the end; default: a question about the sample, or a general one."
    ),
) -> None:
    """Run the whole asset graph (audio to viz) on a folder with embedded defaults.

    Uses the Ollama at AUTORAG_OLLAMA_BASE_URL, or starts the packaged local server when none
    answers. Results land under AUTORAG_DATA_DIR; exits 1 when any file or check failed.
    """
    from autorag_dagster.cli import render
    from autorag_dagster.local_run import ensure_models, ollama_or_local_server, run_folder
    from autorag_dagster.ollama import OllamaError
    from autorag_dagster.samples import write_sample

    settings = _settings()
    sample_run = folder is None
    if folder is None:
        folder = settings.layout.sample_dir.resolve()
        try:
            sample = write_sample(folder)
        except RuntimeError as exc:
            _fail(str(exc))
        render.say(f"No folder given: generated a {sample.duration_s:.0f} s sample meeting at {sample.path}")
    try:
        with ollama_or_local_server(settings, render.say) as effective:
            ensure_models(effective, render.say, progress=render.pull_display)
            with render.stage_progress() as progress:
                report = run_folder(folder, effective, render.say, progress)
            _closing_summary(
                report, effective, settings, query or (SAMPLE_QUESTION if sample_run else GENERAL_QUESTION)
            )
    except (OllamaError, FileNotFoundError) as exc:
        _fail(str(exc))
    if not report.ok:
        raise typer.Exit(1)


SEARCH_HINT = '.venv/bin/autorag search "{query}"'
# The closing search asks in other words than the transcript and the titles use, so it shows
# what the embeddings find rather than echoing a title back.
SAMPLE_QUESTION = "how much money is left over this year"
GENERAL_QUESTION = "what was decided"


def _closing_summary(report, effective, settings, query: str) -> None:
    """The main job's last words: each file's result, where the results are, one sample search."""
    from autorag_dagster.cli import render
    from autorag_dagster.core.search import search as search_store
    from autorag_dagster.core.store import SegmentStore
    from autorag_dagster.ollama import OllamaClient

    layout = effective.layout
    render.console.print(render.files_table(report, _topic_rows(layout, report.files)))
    render.failures(report.files, report.log_file)
    if report.model_loads:
        render.say(render.loads_line(report.model_loads))
    if report.log_file is not None:
        render.say(f"Step logs:    {report.log_file.resolve()}")
    render.say(f"HTML pages:   {report.viz_index.resolve()}")
    render.say(f"Exports:      {layout.files_dir.resolve()}  (one folder per file: JSON, SRT, VTT, RTTM, outline)")
    if report.index_ok:
        store = SegmentStore.for_model(layout.lancedb, effective.embed_model)
        render.say(f"LanceDB:      {layout.lancedb}  (table {store.name}, {store.count()} rows)")
        with OllamaClient.from_config(effective.ollama_config) as client:
            hits = search_store(store, query, embed=client.embed, k=3)
        render.console.print(render.hits_table(hits, query=query))
        render.say(f"Search again later with: {SEARCH_HINT.format(query=query.replace(chr(34), ''))}")
    render.say(f"Dagster storage: {report.dagster_home}  (open the UI with: make dev)")


def _topic_rows(layout, outcomes) -> dict[str, dict]:
    """Per file that has a topic tree: its node count and which stages fell back (from ``topic_stats.json``)."""
    from autorag_dagster.core.topics import describe_fallbacks

    rows = {}
    for outcome in outcomes:
        stats = layout.read_topic_stats(outcome.key)
        if stats is not None:
            rows[outcome.key] = {
                "nodes": stats.get("node_count", "-"),
                "fallbacks": describe_fallbacks(stats.get("fallback_counts") or {}),
            }
    return rows


class SearchMode(StrEnum):
    hybrid = "hybrid"
    vector = "vector"
    text = "text"


@app.command("search")
def search(
    query: str = typer.Argument(..., help="What to look for, in your own words."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many hits."),
    file: list[str] = typer.Option(None, "--file", help="Only this file (its key); repeatable.", show_default=False),
    speaker: list[str] = typer.Option(
        None, "--speaker", help="Only text by this speaker; repeatable.", show_default=False
    ),
    mode: SearchMode = typer.Option(SearchMode.hybrid, help="hybrid = vector + full text (score fusion)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs instead of a table."),
) -> None:
    """Search the embedded corpus; prints each hit's file, time span, speakers, topic and text.

    The query is embedded with AUTORAG_EMBED_MODEL through the Ollama at AUTORAG_OLLAMA_BASE_URL
    (not needed for --mode text); rows come from that model's table in AUTORAG_LANCEDB_URI
    (default <data_dir>/lancedb). When no Ollama answers, the packaged server and its embedding
    model are used, as `autorag run` does, so a search right after `autorag run` just works.
    """
    from autorag_dagster.cli.render import console, hits_table, say_err
    from autorag_dagster.core.search import hits_json
    from autorag_dagster.core.search import search as search_store
    from autorag_dagster.core.store import SegmentStore, StoreError
    from autorag_dagster.local_run import ollama_or_local_server, packaged
    from autorag_dagster.ollama import OllamaClient, OllamaError
    from autorag_dagster.ollama.identity import identify_server

    settings = _settings()
    try:
        if mode is SearchMode.text:  # no embedding: only the table's name depends on the model
            answering = identify_server(settings.ollama_base_url).version is not None
            effective = settings if answering else packaged(settings)
            store = SegmentStore.for_model(effective.layout.lancedb, effective.embed_model)
            hits = search_store(store, query, embed=None, k=k, files=file, speakers=speaker, mode=mode.value)
        else:
            with ollama_or_local_server(settings, say_err, own_port=True) as effective:
                store = SegmentStore.for_model(effective.layout.lancedb, effective.embed_model)
                with OllamaClient.from_config(effective.ollama_config) as client:
                    hits = search_store(
                        store, query, embed=client.embed, k=k, files=file, speakers=speaker, mode=mode.value
                    )
    except (StoreError, OllamaError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(hits_json(hits))
    elif hits:
        console.print(hits_table(hits, query=query))
    else:
        typer.echo("No hits.", err=True)


speakers_app = typer.Typer(
    help="Voices across the library: list the identities, name them (speakers.yaml in the audio folder).",
    no_args_is_help=True,
)
app.add_typer(speakers_app, name="speakers")
FOLDER_OPTION = typer.Option(
    None,
    "--folder",
    help="The audio folder (its speakers.yaml); default: the folder `autorag run` last ran on.",
    show_default=False,
)


@speakers_app.command("list")
def speakers_list(
    folder: Path = FOLDER_OPTION, as_json: bool = typer.Option(False, "--json", help="Print JSON for programs.")
) -> None:
    """Every identity (VOICE_0001, ...) with its name, talk time, the files it speaks in, and the
    names its words suggest ("I'm Ana") with where they are said: suggestions, never applied."""
    import json
    from dataclasses import asdict

    from autorag_dagster.cli.render import console, speakers_table
    from autorag_dagster.core.speakers import SpeakersFileError, read_speakers, speaker_rows
    from autorag_dagster.core.types import SpeakerTranscript
    from autorag_dagster.local_run import library_settings

    settings = library_settings(_settings(), folder)
    try:
        rows = speaker_rows(
            settings.layout.read_voice_registry(),
            read_speakers(settings.speakers_file),
            settings.layout.stored_values("speaker_transcript", SpeakerTranscript),
        )
    except SpeakersFileError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    elif rows:
        console.print(speakers_table(rows))
    else:
        typer.echo("No voices yet: run `autorag run FOLDER` first.", err=True)


@speakers_app.command("name")
def speakers_name(
    identity: str = typer.Argument(..., help="The identity, e.g. VOICE_0003 (see `autorag speakers list`)."),
    name: str = typer.Argument(..., help='Its name, e.g. "Ana"; an empty string removes the name.'),
    apply: bool = typer.Option(
        True, "--apply/--no-apply", help="Re-materialise what shows names now (never Whisper or the diarizer)."
    ),
    folder: Path = FOLDER_OPTION,
) -> None:
    """Name a voice in speakers.yaml (the rest of the file is kept), then show the name everywhere."""
    from autorag_dagster.cli import render
    from autorag_dagster.core.speakers import SpeakersFileError, set_identity_name
    from autorag_dagster.local_run import apply_speakers, ensure_models, library_settings, ollama_or_local_server
    from autorag_dagster.ollama import OllamaError

    settings = library_settings(_settings(), folder)
    registry = settings.layout.read_voice_registry()
    if registry is not None and registry.get(identity) is None:
        _fail(f"No identity {identity} in {settings.layout.voices_registry}: see `autorag speakers list`.")
    try:
        set_identity_name(settings.speakers_file, identity, name or None)
    except SpeakersFileError as exc:
        _fail(str(exc))
    render.say(f"{identity} is {name!r} in {settings.speakers_file}" if name else f"{identity} has no name now.")
    if not apply:
        return
    try:
        with ollama_or_local_server(settings, render.say) as effective:
            ensure_models(effective, render.say, progress=render.pull_display)
            ok = apply_speakers(effective, render.say)
    except (OllamaError, FileNotFoundError) as exc:
        _fail(str(exc))
    if not ok:
        raise typer.Exit(1)


export_app = typer.Typer(
    name="export", help="Write exports of a processed file from its stored results.", no_args_is_help=True
)
app.add_typer(export_app)


@export_app.command("chapters")
def export_chapters(
    file: str = typer.Argument(
        ...,
        metavar="FILE",
        help="The audio file (its path), or its key: its path relative to the audio folder it was run from.",
    ),
    embed: Path = typer.Option(
        None,
        "--embed",
        metavar="OUT",
        help="Also write a copy of the audio with the chapters in it (OUT ends in .mp3 or .m4a).",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT when it exists."),
) -> None:
    """Write a file's chapters from its topic tree: chapters.vtt, chapters.json (Podcasting 2.0),
    chapters.txt (00:00 lines) and chapters.ffmetadata, in its exports folder.

    With --embed OUT, also write a copy of the audio with the chapters embedded, through the
    ffmpeg command: the audio is copied as it is when OUT has the original's format, else
    encoded. The original file is never modified. Reads AUTORAG_DATA_DIR.
    """
    from autorag_dagster.cli import render
    from autorag_dagster.core.chapters import ChaptersError, chapters_of, embed_chapters
    from autorag_dagster.core.chapters import export_chapters as write_chapters
    from autorag_dagster.core.types import AudioInfo, TopicTree
    from autorag_dagster.layout import StoredValueError

    settings = _settings()
    layout = settings.layout
    key = layout.key_for(file, settings.audio_dir)
    given = Path(file)
    folder = given.parent if given.is_file() else Path(settings.audio_dir)
    run_hint = f"run `autorag run {folder}` (or materialise topic_tree for it in Dagster) first"
    if key is None:
        _fail(f"{file} has not been processed with the data in {layout.root}: {run_hint}.")
    try:
        tree = layout.read_stored("topic_tree", key)
    except FileNotFoundError:
        _fail(f"{file} has no topic tree yet: {run_hint}.")
    except StoredValueError as exc:
        _fail(str(exc))
    if not isinstance(tree, TopicTree):
        _fail(f"The stored topic tree of {key!r} is not a topic tree: {run_hint}.")
    files = write_chapters(tree, layout.file_dir(key))
    copy = None
    if embed is not None:
        if given.is_file():
            source = given
        else:
            info = layout.read_stored("audio", key) if layout.stored_path("audio", key).exists() else None
            if not isinstance(info, AudioInfo):
                _fail(f"The data has no record of where {key!r} is: give the audio file's path instead of its key.")
            source = Path(info.path)
        try:
            copy = embed_chapters(source, files["chapters_ffmetadata"], embed, overwrite=force)
        except ChaptersError as exc:
            _fail(str(exc))
    render.console.print(render.chapters_table(key, chapters_of(tree)))
    render.exported(files, copy)


@app.command("ask")
def ask(
    question: str = typer.Argument(..., help="The question, in your own words."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many retrieved spans the answer may use."),
    file: list[str] = typer.Option(None, "--file", help="Only this file (its key); repeatable.", show_default=False),
    speaker: list[str] = typer.Option(
        None, "--speaker", help="Only text by this speaker; repeatable.", show_default=False
    ),
    generate: bool = typer.Option(
        None,
        "--generate/--extractive",
        show_default=False,
        help="Generated or quoted answers; default AUTORAG_ASK_GENERATE, else by the LLM's size.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs instead of text."),
) -> None:
    """Answer a question from the recordings, citing file and time of every part of the answer.

    Retrieves with hybrid search (as `autorag search`), then answers only from the retrieved
    spans: with a small LLM (under 3B parameters, e.g. the packaged smollm2:135m) the closest
    sentences, quoted; with a larger one (or --generate) a generated answer whose citations
    are checked. When nothing in the corpus is close enough it says so. When no Ollama
    answers, the packaged server is used, as `autorag search` does.
    """
    from autorag_dagster.cli.render import answer_view, console, say_err
    from autorag_dagster.core.ask import ask as ask_store
    from autorag_dagster.core.store import SegmentStore, StoreError
    from autorag_dagster.core.viz import page_relpath
    from autorag_dagster.local_run import ollama_or_local_server
    from autorag_dagster.ollama import OllamaClient, OllamaError

    settings = _settings()
    if generate is None:
        generate = settings.ask_generate

    def page_url(key: str, start: float) -> str:
        page = (Path(effective.layout.viz_dir) / page_relpath(key)).resolve()
        return f"{page.as_uri()}#t={int(start)}"

    try:
        with ollama_or_local_server(settings, say_err, own_port=True) as effective:
            store = SegmentStore.for_model(effective.layout.lancedb, effective.embed_model)
            with OllamaClient.from_config(effective.ollama_config) as client:
                result = ask_store(
                    store,
                    question,
                    embed=client.embed,
                    client=client,
                    generate=generate,
                    k=k,
                    files=file,
                    speakers=speaker,
                    min_similarity=settings.ask_min_similarity,
                    page_url=page_url,
                )
    except (StoreError, OllamaError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(result.to_json())
    else:
        console.print(*answer_view(result), sep="\n")


if __name__ == "__main__":  # pragma: no cover
    app()
