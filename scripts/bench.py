#!/usr/bin/env python
"""Benchmark of the whole asset graph on a generated corpus, and of LanceDB search.

    .venv/bin/python scripts/bench.py --minutes 2 --files 2 --out bench.json
    .venv/bin/python scripts/bench.py --minutes 10,30,60 --models packaged --search-rows '' --out lengths.json

1. Generates ``--files`` espeak-ng conversations of ``--minutes`` each (the scripts rotate and the
   voices swap from file to file, so no two files are the same).
2. Runs the asset graph (every per-file asset with its checks, then ``lancedb_index``) as ONE run
   over all files, stage by stage, ``--repeat`` times from a cold start (a fresh data folder and
   DAGSTER_HOME each time), and reports the median wall time per step (Dagster's STEP_SUCCESS
   durations), the realtime factor, the transcript step against raw faster-whisper on the same
   files, and the LLM figures: calls, tokens, loads, reloads, most requests in flight.
3. Reruns the same graph on the warm LLM answer cache: cache hits and LLM calls (0 expected).
4. With ``--compare-per-file``: the same files run one by one (one run per file), for the loads.
5. Times LanceDB search (hybrid, vector, full text) at each of ``--search-rows`` rows.
6. Records peak memory (this process and its children, the spawned model server among them).

With several ``--minutes`` (e.g. ``10,30,60``) the whole-graph steps 1-4 give way to a length study:
per length, one long recording (subject blocks of twelve subjects, round after round, the roles
recast onto six voices each round) runs through the graph cold, and the report gives per-stage
seconds, the realtime factor, the peak resident memory of this process (where Dagster runs the
steps) and of the model server during that run alone (each peak is reset before the run), and the
cost per audio minute against the shortest length (1.0 = linear). A short warm-up run first
(imports, models read from disk) is not reported.

``--models`` picks what answers the LLM and embedding calls: ``deterministic`` (the local server's
test double: fast schema-valid answers and hashed vectors, served as deterministic-llm and
deterministic-embed), ``packaged`` (smollm2:135m on
llama.cpp + all-minilm on sentence-transformers, served by the local server) or ``settings``
(AUTORAG_* as configured, e.g. a real Ollama on a GPU host). With the local server the LLM
figures come from its event log; with ``settings`` from the topic_tree step's metadata.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # more threads than free cores stall torch and CTranslate2
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

import datetime as dt
import functools
import itertools
import json
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from autorag_dagster.local_run import (
    PACKAGED_EMBED,
    PACKAGED_LLM,
    PACKAGED_SLOTS,
    ensure_models,
    ollama_or_local_server,
)
from autorag_dagster.runner import failure_text, materialization_metadata, step_seconds, succeeded
from autorag_dagster.samples import (
    ALL_VOICES,
    LONG_ORDER,
    SAMPLE_MEETING,
    SAMPLE_RATE,
    SUBJECT_BLOCKS,
    VOICES,
    require_espeak,
    speak,
    write_wav,
)
from autorag_dagster.settings import Settings, load_settings

console = Console(stderr=True)

# A second conversation, so that the corpus is not one script repeated.
PODCAST: list[tuple[str, str]] = [
    ("carol", "Welcome back to the kitchen podcast. Today we talk about cooking for a busy family."),
    ("bob", "Thanks for having me. I cook dinner for my two children every evening after work."),
    ("carol", "What is the fastest meal you make when everybody is hungry and tired?"),
    ("bob", "Pasta with fresh tomatoes, garlic and olive oil. It takes about fifteen minutes."),
    ("alice", "I prefer soup. I make a large pot on Sunday and it keeps well for four days."),
    ("carol", "Let us talk about shopping. Do you plan the meals for the whole week?"),
    ("alice", "Yes. I write a list on Saturday morning and buy everything at the market."),
    ("bob", "I buy rice, beans and frozen vegetables in large bags, because they are cheap and keep for months."),
    ("carol", "Now the children. How do you get them to eat more vegetables?"),
    ("alice", "They help me cook. When they cut the carrots themselves, they want to eat them."),
    ("bob", "My son likes to bake bread with me on the weekend, and he eats the crust with butter."),
    ("carol", "Finally, the budget. How much does a family dinner cost you?"),
    ("bob", "About ten dollars for four people, if I cook beans and rice with vegetables."),
    ("alice", "Soup costs even less. Onions, potatoes and lentils are the cheapest food in the market."),
    ("carol", "Thank you both. Next week we visit a bakery and learn how to make sourdough bread."),
]
SCRIPTS = (SAMPLE_MEETING, PODCAST)
LEAD_S, PAUSE_S = 0.5, 0.7  # silence before the first line and between lines

LOCAL_MODELS = {  # --models: (LLM, embedder, server slots = LLM requests in flight)
    "deterministic": ("deterministic-llm:latest", "deterministic-embed:latest", 8),
    "packaged": (PACKAGED_LLM, f"{PACKAGED_EMBED}:latest", PACKAGED_SLOTS),  # as the main job runs it
}
LLM_ENDPOINTS = {"chat", "generate"}
LOCAL_SERVER_COMMAND = "ollama-serve"  # in the command line of the local server's process
ASSET_STEPS = (  # the steps that materialise assets, in graph order (the others are asset checks)
    "audio",
    "transcript",
    "diarization",
    "speaker_transcript",
    "topic_tree",
    "embeddings",
    "viz",
    "lancedb_index",
)
WARMUP_MINUTES = 0.5  # the length study's first, unreported run: imports and first reads from disk
WHISPER_ACQUIRE = "| acquire | whisper |"  # a row of the GPU tenancy timeline in the step's metadata
SEARCH_BATCH_ROWS = 5_000
SEARCH_MODEL = "bench-synthetic"
WARMUP_QUERIES = 3
VERSIONS_OF = (
    "torch",
    "ctranslate2",
    "faster-whisper",
    "lancedb",
    "dagster",
    "ollama",
    "llama-cpp-python",
    "sentence-transformers",
)


class Models(StrEnum):
    deterministic = "deterministic"
    packaged = "packaged"
    settings = "settings"


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    minutes: float = 2.0
    files: int = 2
    models: Models = Models.deterministic
    repeat: int = 1
    compare_per_file: bool = False
    search_rows: tuple[int, ...] = (10_000, 100_000)
    queries: int = 50
    workdir: Path | None = None
    scale: tuple[int, ...] = ()
    lengths: tuple[float, ...] = ()  # several --minutes: the length study instead of the whole-graph steps


def say(message: str) -> None:
    console.log(message)


def median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 3)


# --- corpus ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioFile:
    key: str
    path: Path
    duration_s: float


@functools.cache
def spoken(text: str, speaker: str) -> np.ndarray:
    return speak(text, ALL_VOICES[speaker])


def file_lines(index: int) -> Iterator[tuple[str, str]]:
    """File ``index``'s script, endlessly: the scripts alternate, their lines rotate, the voices swap."""
    lines = SCRIPTS[index % len(SCRIPTS)]
    shift = (index // len(SCRIPTS)) * 5 % len(lines)
    names = list(VOICES)
    cast = {name: names[(position + index) % len(names)] for position, name in enumerate(names)}
    return ((cast[speaker], text) for speaker, text in itertools.cycle(lines[shift:] + lines[:shift]))


def write_conversation(path: Path, lines: Iterator[tuple[str, str]], target_s: float) -> float:
    """Speak lines into ``path`` until it lasts ``target_s``; returns its duration in seconds."""
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.int16)
    pieces = [np.zeros(int(LEAD_S * SAMPLE_RATE), dtype=np.int16)]
    length = len(pieces[0])
    while length < target_s * SAMPLE_RATE:
        speaker, text = next(lines)
        clip = spoken(text, speaker)
        pieces += [clip, pause]
        length += len(clip) + len(pause)
    write_wav(path, np.concatenate(pieces))
    return length / SAMPLE_RATE


def long_lines() -> Iterator[tuple[str, str]]:
    """A long varied recording's lines, endlessly: the subject blocks of ``LONG_ORDER`` and the kitchen
    podcast (twelve subjects), round after round; each round recasts the roles onto the next voices
    of ``ALL_VOICES`` (espeak-ng and flite), so an hour hears all six."""
    blocks = [SUBJECT_BLOCKS[subject] for subject in LONG_ORDER] + [PODCAST]
    roles = sorted({speaker for block in blocks for speaker, _ in block})
    voices = list(ALL_VOICES)
    for round_ in itertools.count():
        cast = {role: voices[(position + round_) % len(voices)] for position, role in enumerate(roles)}
        for block in blocks:
            yield from ((cast[speaker], text) for speaker, text in block)


def make_long(folder: Path, minutes: Sequence[float]) -> list[AudioFile]:
    """One long recording (``long_lines``) per length in ``minutes``."""
    require_espeak()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = []
    for length in minutes:
        key = f"long-{length:g}min.wav"
        corpus.append(AudioFile(key, folder / key, write_conversation(folder / key, long_lines(), length * 60)))
    return corpus


def make_corpus(folder: Path, files: int, minutes: float) -> list[AudioFile]:
    require_espeak()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = []
    for index in range(files):
        key = f"bench-{index + 1:02d}.wav"
        corpus.append(AudioFile(key, folder / key, write_conversation(folder / key, file_lines(index), minutes * 60)))
    return corpus


# --- the model server ------------------------------------------------------------------------
@dataclass
class Endpoint:
    """The settings every run uses, and the local server when one was started (for its event log)."""

    settings: Settings
    server: Any | None  # SpawnedServer

    def events(self) -> list[dict] | None:
        return None if self.server is None else self.server.events()

    def clear_events(self) -> None:
        if self.server is not None:
            self.server.clear_events()


@contextmanager
def model_endpoint(models: Models, workdir: Path, corpus_dir: Path) -> Iterator[Endpoint]:
    """The local server as a child process with the chosen models, or the configured Ollama."""
    base = dict(audio_dir=str(corpus_dir), data_dir=str(workdir / "data"))
    if models is Models.settings:
        with ollama_or_local_server(load_settings(**base), say) as settings:
            ensure_models(settings, say)
            yield Endpoint(settings, None)
        return
    from autorag_dagster.localserve import ConfigError, SpawnedServer

    llm, embed, slots = LOCAL_MODELS[models.value]
    try:
        server = SpawnedServer(
            models_dir=workdir / "models",
            pulled=[llm, embed],
            num_parallel=slots,
            max_loaded_models=2,
            keep_alive="5m",
            deterministic=models is Models.deterministic,
            test_routes=True,
        )
    except ConfigError as exc:  # a packaged model whose package is not installed
        raise BenchError(f"--models {models.value}: {exc}") from None
    with server:
        say(f"Local model server (a child process) at {server.url}: {llm}, {embed}, {slots} slot(s)")
        settings = load_settings(
            **base, ollama_base_url=server.url, llm_model=llm, embed_model=embed, max_concurrency=slots
        )
        yield Endpoint(settings, server)


# --- Dagster runs ------------------------------------------------------------------------------
@dataclass
class GraphRun:
    """One materialisation of the graph over the corpus: one Dagster run, or one per file."""

    wall_s: float
    results: list[Any]  # ExecuteInProcessResult, the index run last
    events: list[dict] | None  # the model server's events during the run

    def step_seconds(self) -> dict[str, float]:
        """Wall seconds per step key (summed over the runs), from Dagster's STEP_SUCCESS events."""
        return step_seconds(self.results)

    def metadata(self, asset: str) -> list[dict[str, Any]]:
        """The metadata values of ``asset``'s step in each run (one materialisation per run)."""
        return materialization_metadata(self.results, asset)

    def whisper_loads(self) -> int:
        return sum(m["gpu_timeline"].count(WHISPER_ACQUIRE) for m in self.metadata("transcript"))


def execute(run: Callable[[], Any]):
    result = run()
    if not succeeded(result):
        raise BenchError(f"a run failed:\n{failure_text(result) or 'the run failed'}")
    return result


def run_graph(endpoint: Endpoint, data_dir: Path, keys: Sequence[str], *, one_by_one: bool = False) -> GraphRun:
    """Every per-file asset with its checks, then the index; data and Dagster's storage under ``data_dir``."""
    from autorag_dagster.runner import EmbeddedDagster

    settings = endpoint.settings.model_copy(update={"data_dir": str(data_dir)})
    endpoint.clear_events()
    with EmbeddedDagster(settings, home=settings.layout.dagster_home) as dagster:
        dagster.register(keys)
        started = time.perf_counter()
        if one_by_one:
            results = [execute(lambda key=key: dagster.run_file(key)) for key in keys]
        else:
            results = [execute(lambda: dagster.run_files(keys))]
        results.append(execute(dagster.index))
        wall = time.perf_counter() - started
    return GraphRun(round(wall, 3), results, endpoint.events())


# --- figures -----------------------------------------------------------------------------------
def llm_figures(run: GraphRun, settings: Settings) -> dict[str, Any]:
    """LLM calls, tokens, loads, reloads and peak concurrency: from the server's event log when
    there is one, else from the topic_tree step's metadata (summed over the runs)."""
    if run.events is None:
        steps = run.metadata("topic_tree")
        return {
            "source": "topic_tree metadata",
            "llm_calls": sum(m["llm_calls"] for m in steps),
            "prompt_tokens": sum(m["prompt_tokens"] for m in steps),
            "output_tokens": sum(m["output_tokens"] for m in steps),
            "llm_loads": sum(m["llm_loads"] for m in steps),
            "llm_reloads": sum(m["llm_reloads"] for m in steps),
            "max_in_flight": max((m["max_in_flight"] for m in steps), default=0),
            "embed_requests": None,
            "embed_loads": None,
        }
    from autorag_dagster.localserve import max_in_flight
    from autorag_dagster.localserve.catalogue import canonical_name

    llm, embed = canonical_name(settings.llm_model), canonical_name(settings.embed_model)

    def of(kind: str, model: str) -> list[dict]:
        return [e for e in run.events if e["kind"] == kind and e["model"] == model]

    calls = [e for e in of("request_end", llm) if e.get("endpoint") in LLM_ENDPOINTS]
    return {
        "source": "server event log",
        "llm_calls": len(calls),
        "prompt_tokens": sum(e.get("prompt_eval_count") or 0 for e in calls),
        "output_tokens": sum(e.get("eval_count") or 0 for e in calls),
        "llm_loads": len(of("load", llm)),
        "llm_reloads": len(of("reload", llm)),
        "max_in_flight": max_in_flight(run.events).get(llm, 0),
        "embed_requests": sum(1 for e in of("request_end", embed) if e.get("endpoint") == "embed"),
        "embed_loads": len(of("load", embed)),
    }


def cache_hits(run: GraphRun) -> int:
    return sum(m["cache_hits"] for m in run.metadata("topic_tree"))


def raw_whisper(settings: Settings, device: str, corpus: Sequence[AudioFile]) -> dict[str, float]:
    """faster-whisper alone on the same files: same model, device, threads and decoding options."""
    from faster_whisper import WhisperModel, decode_audio

    from autorag_dagster.core.transcribe import resolve_model

    compute_type = settings.whisper_compute_type
    if compute_type == "default":
        compute_type = "int8" if device == "cpu" else "default"
    samples = [decode_audio(str(f.path), sampling_rate=16_000) for f in corpus]
    started = time.perf_counter()
    model = WhisperModel(
        resolve_model(settings.whisper_model),
        device=device,
        compute_type=compute_type,
        cpu_threads=settings.cpu_threads,
    )
    loaded = time.perf_counter()
    for audio in samples:
        segments, _ = model.transcribe(
            audio,
            language=settings.whisper_language,
            word_timestamps=True,
            vad_filter=True,
            beam_size=5,
        )
        for _segment in segments:  # a generator: decoding happens here
            pass
    done = time.perf_counter()
    del model
    return {
        "load_s": round(loaded - started, 3),
        "transcribe_s": round(done - loaded, 3),
        "total_s": round(done - started, 3),
    }


def graph_section(runs: list[GraphRun], raws: list[dict[str, float]], audio_s: float, settings: Settings) -> dict:
    steps = [run.step_seconds() for run in runs]
    wall = median(run.wall_s for run in runs)
    transcript_s = median(s["transcript"] for s in steps)
    raw_s = median(r["total_s"] for r in raws)
    return {
        "runs": len(runs),
        "wall_s": wall,
        "wall_s_each": [run.wall_s for run in runs],
        "realtime_factor": round(audio_s / wall, 3),
        "steps_s": {key: median(s[key] for s in steps) for key in steps[0]},
        "whisper_loads": runs[-1].whisper_loads(),
        "llm": llm_figures(runs[-1], settings),
        "transcript_vs_raw": {
            "step_s": transcript_s,
            "raw_load_s": median(r["load_s"] for r in raws),
            "raw_transcribe_s": median(r["transcribe_s"] for r in raws),
            "raw_s": raw_s,
            "ratio": round(transcript_s / raw_s, 3),
        },
    }


def rerun_section(run: GraphRun, settings: Settings) -> dict:
    llm = llm_figures(run, settings)
    return {
        "wall_s": run.wall_s,
        "steps_s": run.step_seconds(),
        "cache_hits": cache_hits(run),
        "llm_calls": llm["llm_calls"],
        "llm_loads": llm["llm_loads"],
        "embed_requests": llm["embed_requests"],
    }


def per_file_section(run: GraphRun, settings: Settings) -> dict:
    llm = llm_figures(run, settings)
    return {
        "wall_s": run.wall_s,
        "runs": len(run.results) - 1,
        "whisper_loads": run.whisper_loads(),
        "llm_loads": llm["llm_loads"],
        "llm_calls": llm["llm_calls"],
        "embed_loads": llm["embed_loads"],
    }


# --- LanceDB search ------------------------------------------------------------------------
def vocabulary() -> list[str]:
    return sorted({w for script in SCRIPTS for _, line in script for w in re.findall(r"[a-z]+", line.lower())})


def unit_vectors(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_rows(rng: np.random.Generator, words: Sequence[str], count: int, dim: int):
    """(Record, vector) pairs: texts of 40-120 words drawn from ``words``, random unit vectors."""
    from autorag_dagster.core.chunking import Record

    vectors = unit_vectors(rng, count, dim)
    for i in range(count):
        text = " ".join(rng.choice(words, size=int(rng.integers(40, 121))))
        start = float(i * 30)
        yield (
            Record(kind="chunk", start=start, end=start + 30, speakers=("SPEAKER_00",), text=text),
            vectors[i].tolist(),
        )


def build_table(uri: str, rows: int, dim: int, words: Sequence[str], rng: np.random.Generator):
    """A segment table of ``rows`` synthetic rows, written in partitions, then maintained."""
    from autorag_dagster.core.store import SegmentStore

    store = SegmentStore(uri, SEARCH_MODEL, dim)
    started = time.perf_counter()
    for number, first in enumerate(range(0, rows, SEARCH_BATCH_ROWS)):
        count = min(SEARCH_BATCH_ROWS, rows - first)
        store.write_partition(f"synthetic/{number:04d}.wav", synthetic_rows(rng, words, count, dim))
        say(f"  {first + count}/{rows} rows written")
    written = time.perf_counter()
    say(f"  indexing {rows} rows (full text, scalar, vector when over the threshold) ...")
    report = store.maintain()
    maintained = time.perf_counter()
    return store, report, round(written - started, 3), round(maintained - written, 3)


def time_queries(store, queries: dict[str, list[float]], mode: str) -> list[float]:
    """Milliseconds per search; the query vectors are precomputed (no model call is timed)."""
    from autorag_dagster.core.search import search

    def embed(texts: list[str]) -> list[list[float]]:
        return [queries[text] for text in texts]

    texts = list(queries)
    for text in texts[:WARMUP_QUERIES]:
        search(store, text, embed=embed, k=10, mode=mode)
    timings = []
    for text in texts:
        started = time.perf_counter()
        search(store, text, embed=embed, k=10, mode=mode)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def search_section(workdir: Path, sizes: Sequence[int], dim: int, queries: int) -> list[dict]:
    from autorag_dagster.core.search import MODES

    rng = np.random.default_rng(8)
    words = vocabulary()
    results = []
    for rows in sizes:
        say(f"Search benchmark: {rows} rows of {dim}-d vectors")
        store, report, write_s, maintain_s = build_table(str(workdir / f"search-{rows}"), rows, dim, words, rng)
        vectors = unit_vectors(rng, queries, dim)
        texts = [" ".join(rng.choice(words, size=2)) for _ in range(queries)]
        by_text = dict(zip(texts, (v.tolist() for v in vectors)))
        modes = {}
        for mode in MODES:
            timings = time_queries(store, by_text, mode)
            modes[mode] = {
                "queries": len(timings),
                "p50_ms": round(float(np.percentile(timings, 50)), 2),
                "p95_ms": round(float(np.percentile(timings, 95)), 2),
            }
        results.append(
            {
                "rows": rows,
                "dim": dim,
                "write_s": write_s,
                "maintain_s": maintain_s,
                "indices": report.indices,
                "modes": modes,
            }
        )
    return results


# --- machine, versions, memory -----------------------------------------------------------------
def meminfo_gib() -> float | None:
    match = (
        re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if Path("/proc/meminfo").exists()
        else None
    )
    return round(int(match.group(1)) / 2**20, 1) if match else None


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M) if cpuinfo.exists() else None
    return match.group(1).strip() if match else platform.processor()


def gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def machine() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "system": f"{uname.system} {uname.release}",
        "arch": uname.machine,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_gib": meminfo_gib(),
        "gpus": gpus(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in VERSIONS_OF:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def peak_memory_mib() -> dict[str, float]:
    """ru_maxrss (KiB on Linux): this process, and the largest of its reaped children."""
    return {
        "self_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def child_pid(marker: str) -> int | None:
    """The running child process whose command line holds ``marker``."""
    for listing in Path("/proc/self/task").glob("*/children"):
        for pid in listing.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # it exited meanwhile
                continue
            if marker in command:
                return int(pid)
    return None


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """VmHWM (peak resident memory since start or since ``reset_peak``) of process ``pid``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return round(int(match.group(1)) / 1024, 1) if match else None


def reset_peak(pid: int | str = "self") -> bool:
    """Reset process ``pid``'s VmHWM to its present resident size (Linux's clear_refs, value 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_peak_mib(marker: str) -> float | None:
    """VmHWM (peak resident memory) of the running child process whose command line holds ``marker``."""
    pid = child_pid(marker)
    return None if pid is None else vm_hwm_mib(pid)


def topic_figures(run: GraphRun, data_dir: Path, key: str) -> dict[str, Any]:
    """What the topic tree of a long file covers: level-1 nodes, the longest of them, the largest
    prompt the LLM evaluated against the run's num_ctx (a prompt near num_ctx was cut)."""
    from autorag_dagster.layout import DataLayout

    tree = DataLayout(data_dir).read_stored("topic_tree", key)
    (meta,) = run.metadata("topic_tree")
    prompts = [
        e.get("prompt_eval_count") or 0
        for e in run.events or []
        if e["kind"] == "request_end" and e.get("endpoint") in LLM_ENDPOINTS
    ]
    return {
        "level1_nodes": len(tree.nodes),
        "nodes": meta["nodes"],
        "longest_level1_s": round(max((n.end - n.start for n in tree.nodes), default=0.0), 1),
        "last_level1_start_s": round(tree.nodes[-1].start, 1) if tree.nodes else None,
        "num_ctx": meta["num_ctx"],
        "largest_prompt_tokens": max(prompts, default=None),
        "fallback_counts": meta["fallback_counts"],
    }


def length_section(endpoint: Endpoint, workdir: Path, corpus: Sequence[AudioFile]) -> list[dict[str, Any]]:
    """Each long recording through the whole graph, cold, alone; per-stage seconds, realtime factor,
    peak memory of this process and of the model server during that run, cost per audio minute
    against the first (shortest) length."""
    rows: list[dict[str, Any]] = []
    for audio in corpus:
        say(f"Length study: {audio.key} ({audio.duration_s / 60:.1f} min), one cold run ...")
        server = child_pid(LOCAL_SERVER_COMMAND)
        reset_peak()
        if server is not None:
            reset_peak(server)
        data_dir = workdir / f"length-{Path(audio.key).stem}"
        run = run_graph(endpoint, data_dir, [audio.key])
        minutes = audio.duration_s / 60
        steps = run.step_seconds()
        rows.append(
            {
                "key": audio.key,
                "audio_s": round(audio.duration_s, 2),
                "wall_s": run.wall_s,
                "realtime_factor": round(audio.duration_s / run.wall_s, 3),
                "steps_s": steps,
                "wall_per_audio_min_s": round(run.wall_s / minutes, 3),
                "steps_per_audio_min_s": {step: round(seconds / minutes, 3) for step, seconds in steps.items()},
                "peak_rss_mib": {
                    "main": vm_hwm_mib(),
                    "server": None if server is None else vm_hwm_mib(server),
                },
                "topics": topic_figures(run, data_dir, audio.key),
                "load_average_after": [round(x, 2) for x in os.getloadavg()],  # 1, 5, 15 min: a shared machine shows
                "measured": True,
            }
        )
        say(f"  {run.wall_s:.1f} s wall, {rows[-1]['realtime_factor']}x real time, peak RSS {rows[-1]['peak_rss_mib']}")
    base = rows[0]
    for row in rows:
        row["per_minute_vs_first"] = {
            "wall": round(row["wall_per_audio_min_s"] / base["wall_per_audio_min_s"], 3),
            **{
                step: round(seconds / base["steps_per_audio_min_s"][step], 3)
                for step, seconds in row["steps_per_audio_min_s"].items()
                if base["steps_per_audio_min_s"].get(step)
            },
        }
    return rows


def scale_section(
    endpoint: Endpoint, workdir: Path, corpus: Sequence[AudioFile], sizes: Sequence[int], settings: Settings
) -> list[dict[str, Any]]:
    """The whole graph as one run over N files, cold, for each N: loads per model stay 1 and the
    wall time per file falls as the loads are shared by more files."""
    rows = []
    for n in sizes:
        say(f"Scale: one run over {n} file(s), cold ...")
        run = run_graph(endpoint, workdir / f"scale-{n}", [f.key for f in corpus[:n]])
        llm = llm_figures(run, settings)
        audio_s = sum(f.duration_s for f in corpus[:n])
        rows.append(
            {
                "files": n,
                "audio_s": round(audio_s, 2),
                "wall_s": run.wall_s,
                "wall_per_file_s": round(run.wall_s / n, 2),
                "realtime_factor": round(run.wall_s / audio_s, 3),
                "whisper_loads": run.whisper_loads(),
                "diarizer_loads": sum(
                    m["gpu_timeline"].count("| acquire | diarizer |") for m in run.metadata("diarization")
                ),
                "llm_loads": llm["llm_loads"],
                "embed_loads": llm["embed_loads"],
                "measured": True,
            }
        )
    return rows


# --- the benchmark -----------------------------------------------------------------------------
def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measurement; returns the report (see the module docstring)."""
    if options.files < 1 or options.minutes <= 0 or options.repeat < 1 or options.queries < 1:
        raise BenchError("--files, --minutes, --repeat and --queries must be positive")
    with ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autorag-bench-")))
        return measure_lengths(options, workdir) if options.lengths else measure(options, workdir)


def measure_lengths(options: Options, workdir: Path) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    say(f"Generating one long recording per length ({', '.join(f'{m:g}' for m in options.lengths)} min)")
    warmup, *corpus = make_long(workdir / "corpus", [WARMUP_MINUTES, *options.lengths])
    with model_endpoint(options.models, workdir, workdir / "corpus") as endpoint:
        settings = endpoint.settings
        say(f"Warm-up run on {warmup.key} (not reported) ...")
        run_graph(endpoint, workdir / "length-warmup", [warmup.key])
        lengths = length_section(endpoint, workdir, corpus)
        dim = _table_dim(settings.model_copy(update={"data_dir": str(workdir / f"length-{Path(corpus[0].key).stem}")}))
    search = search_section(workdir, options.search_rows, dim, options.queries)
    return {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "models": options.models.value,
            "minutes": list(options.lengths),
            "search_rows": list(options.search_rows),
            "queries": options.queries,
            "pipeline": settings.model_dump(mode="json", exclude={"audio_dir", "data_dir", "lancedb_uri"}),
        },
        "corpus": {"files": len(corpus), "durations_s": [round(f.duration_s, 2) for f in corpus]},
        "lengths": lengths,
        "search": search,
        "memory": {
            "note": "peak_rss_mib per length: VmHWM of this process (Dagster runs the steps in it) and of the "
            "model server (a child process), each reset (clear_refs) just before that length's run.",
        },
    }


def measure(options: Options, workdir: Path) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    say(f"Generating {options.files} file(s) of {options.minutes} min with espeak-ng in {workdir / 'corpus'}")
    corpus = make_corpus(workdir / "corpus", max(options.files, *options.scale, 1), options.minutes)
    scale_corpus, corpus = corpus, corpus[: options.files]
    keys = [f.key for f in corpus]
    audio_s = round(sum(f.duration_s for f in corpus), 2)
    with model_endpoint(options.models, workdir, workdir / "corpus") as endpoint:
        settings = endpoint.settings
        runs, raws = [], []
        for number in range(1, options.repeat + 1):
            say(f"Whole graph, one run over {len(keys)} file(s), cold ({number}/{options.repeat}) ...")
            runs.append(run_graph(endpoint, workdir / f"cold-{number}", keys))
            device = runs[-1].metadata("transcript")[0]["device"]
            say(f"  {runs[-1].wall_s:.1f} s; raw faster-whisper on the same files ({device}) ...")
            raws.append(raw_whisper(settings, device, corpus))
        graph = graph_section(runs, raws, audio_s, settings)
        say("Rerun of the same graph (warm LLM answer cache) ...")
        rerun = rerun_section(run_graph(endpoint, workdir / f"cold-{options.repeat}", keys), settings)
        per_file = None
        if options.compare_per_file:
            say("The same files one by one (one run per file), cold ...")
            per_file = per_file_section(run_graph(endpoint, workdir / "per-file", keys, one_by_one=True), settings)
        scale = scale_section(endpoint, workdir, scale_corpus, options.scale, settings) if options.scale else None
        dim = _table_dim(endpoint.settings.model_copy(update={"data_dir": str(workdir / "cold-1")}))
        server_mib = child_peak_mib(LOCAL_SERVER_COMMAND)  # None when a real Ollama answers
    graph_memory = peak_memory_mib()
    search = search_section(workdir, options.search_rows, dim, options.queries)
    return {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "models": options.models.value,
            "minutes": options.minutes,
            "files": options.files,
            "repeat": options.repeat,
            "compare_per_file": options.compare_per_file,
            "search_rows": list(options.search_rows),
            "queries": options.queries,
            "pipeline": settings.model_dump(mode="json", exclude={"audio_dir", "data_dir", "lancedb_uri"}),
        },
        "corpus": {"files": len(corpus), "audio_s": audio_s, "durations_s": [round(f.duration_s, 2) for f in corpus]},
        "graph": graph,
        "rerun": rerun,
        "per_file": per_file,
        "scale": scale,
        "search": search,
        "memory": {
            "after_graph": graph_memory,
            "peak": peak_memory_mib(),
            "local_server_mib": server_mib,
            "note": "ru_maxrss of this process (Dagster runs in process; 'peak' includes the search tables) and of "
            "its largest reaped child (the local model server among them); a forked child starts from this "
            "process's size, so children_mib is at least self_mib at the last fork. local_server_mib is the "
            "server's own VmHWM.",
        },
    }


def _table_dim(settings: Settings) -> int:
    from autorag_dagster.core.store import SegmentStore

    return SegmentStore.for_model(settings.layout.lancedb, settings.embed_model).dim


# --- presentation ------------------------------------------------------------------------------
def key_values(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, "-" if value is None else str(value))
    return table


def pair(first: Any, second: Any) -> str:
    return " / ".join("-" if value is None else str(value) for value in (first, second))


def summary_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    graph, rerun, per_file, memory = report["graph"], report["rerun"], report["per_file"], report["memory"]
    llm, raw = graph["llm"], graph["transcript_vs_raw"]
    rows = [
        ("wall (s)", graph["wall_s"]),
        ("realtime factor (audio s / wall s)", graph["realtime_factor"]),
        ("transcript step / raw faster-whisper (s)", f"{raw['step_s']} / {raw['raw_s']} = {raw['ratio']}"),
        ("Whisper loads", graph["whisper_loads"]),
        (f"LLM calls ({llm['source']})", llm["llm_calls"]),
        ("prompt / output tokens", f"{llm['prompt_tokens']} / {llm['output_tokens']}"),
        ("LLM loads / reloads", f"{llm['llm_loads']} / {llm['llm_reloads']}"),
        ("LLM max in flight", llm["max_in_flight"]),
        ("embed requests / embedder loads", pair(llm["embed_requests"], llm["embed_loads"])),
        ("rerun: wall (s)", rerun["wall_s"]),
        ("rerun: cache hits / LLM calls", f"{rerun['cache_hits']} / {rerun['llm_calls']}"),
    ]
    if per_file:
        rows += [
            ("one by one: wall (s)", per_file["wall_s"]),
            ("one by one: Whisper / LLM loads", f"{per_file['whisper_loads']} / {per_file['llm_loads']}"),
        ]
    return rows + [
        ("peak RSS: this process / children (MiB)", f"{memory['peak']['self_mib']} / {memory['peak']['children_mib']}"),
        ("peak RSS: local server (MiB)", memory["local_server_mib"]),
    ]


def search_table(report: dict[str, Any]) -> Table:
    table = Table(title="LanceDB search latency (ms)", title_justify="left")
    for column in ("rows", "write (s)", "index (s)", "mode", "p50", "p95"):
        table.add_column(column, justify="right")
    for size in report["search"]:
        for mode, figures in size["modes"].items():
            cells = (size["rows"], size["write_s"], size["maintain_s"], mode, figures["p50_ms"], figures["p95_ms"])
            table.add_row(*map(str, cells))
    return table


def lengths_table(report: dict[str, Any]) -> Table:
    rows = report["lengths"]
    table = Table(title="Cost against length: one cold run per recording (measured)", title_justify="left")
    table.add_column("")
    for row in rows:
        table.add_column(f"{row['audio_s'] / 60:.1f} min", justify="right")

    def add(name: str, cell: Callable[[dict], Any]) -> None:
        table.add_row(name, *("-" if cell(row) is None else str(cell(row)) for row in rows))

    add("wall (s)", lambda r: r["wall_s"])
    add("realtime factor (audio s / wall s)", lambda r: r["realtime_factor"])
    add("wall per audio minute (s)", lambda r: r["wall_per_audio_min_s"])
    add("  / the same at the first length", lambda r: r["per_minute_vs_first"]["wall"])
    for step in ASSET_STEPS:
        add(f"{step} (s)", lambda r, step=step: r["steps_s"].get(step))
        add("  per audio minute / first", lambda r, step=step: r["per_minute_vs_first"].get(step))
    add("asset checks, all (s)", lambda r: round(sum(v for k, v in r["steps_s"].items() if k not in ASSET_STEPS), 3))
    add("peak RSS: main process (MiB)", lambda r: r["peak_rss_mib"]["main"])
    add("peak RSS: model server (MiB)", lambda r: r["peak_rss_mib"]["server"])
    add("topic tree: level-1 nodes", lambda r: r["topics"]["level1_nodes"])
    add("topic tree: longest level-1 node (s)", lambda r: r["topics"]["longest_level1_s"])
    add(
        "largest prompt (tokens) / num_ctx",
        lambda r: pair(r["topics"]["largest_prompt_tokens"], r["topics"]["num_ctx"]),
    )
    return table


def render(report: dict[str, Any], out: Callable[[Any], None]) -> None:
    if "lengths" in report:
        out(lengths_table(report))
        if report["search"]:
            out(search_table(report))
        return
    corpus, graph = report["corpus"], report["graph"]
    title = (
        f"Whole graph: {corpus['files']} file(s), {corpus['audio_s']} s of audio, models "
        f"{report['settings']['models']}, median of {graph['runs']} run(s)"
    )
    out(key_values(title, summary_rows(report)))
    out(key_values("Steps (s, from Dagster's STEP_SUCCESS events)", graph["steps_s"].items()))
    if report.get("scale"):
        table = Table(title="One run over N files: model loads and wall time per file (measured)")
        columns = ("files", "wall_s", "wall_per_file_s", "whisper_loads", "diarizer_loads", "llm_loads", "embed_loads")
        for column in columns:
            table.add_column(column, justify="right")
        for row in report["scale"]:
            table.add_row(*(str(row[c]) for c in columns))
        out(table)
    if report["search"]:
        out(search_table(report))


def parse_rows(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give row counts separated by commas, e.g. 10000,100000") from None
    if any(size < 1 for size in sizes):
        raise typer.BadParameter("row counts must be positive")
    return sizes


def parse_minutes(text: str) -> tuple[float, ...]:
    try:
        lengths = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give minutes separated by commas, e.g. 2 or 10,30,60") from None
    if not lengths or any(length < 0.05 for length in lengths):
        raise typer.BadParameter("each length must be at least 0.05 minutes")
    return lengths


app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@app.command()
def main(
    minutes: str = typer.Option(
        "2",
        help="Length of each generated file, in minutes; several (e.g. '10,30,60'): the length study, one "
        "long recording per length, instead of the whole-graph steps.",
    ),
    files: int = typer.Option(2, min=1, help="Number of files in the corpus."),
    models: Models = typer.Option(Models.deterministic, help="What answers the LLM and embedding calls."),
    repeat: int = typer.Option(1, min=1, help="Cold whole-graph runs; the report quotes medians."),
    compare_per_file: bool = typer.Option(False, help="Also run the files one by one (model loads per file)."),
    search_rows: str = typer.Option("10000,100000", help="Table sizes for the search benchmark ('' skips it)."),
    queries: int = typer.Option(50, min=1, help="Timed queries per search mode and table size."),
    workdir: Path | None = typer.Option(None, help="Keep the corpus, data and tables here (default: a temp dir)."),
    out: Path | None = typer.Option(None, help="Write the JSON report here."),
    scale: str = typer.Option("", help="Also run the graph over N files for each N given, e.g. '1,3,6' ('' skips)."),
) -> None:
    lengths = parse_minutes(minutes)
    options = Options(
        lengths[0],
        files,
        models,
        repeat,
        compare_per_file,
        parse_rows(search_rows),
        queries,
        workdir,
        parse_rows(scale),
        lengths if len(lengths) > 1 else (),
    )
    try:
        report = run_benchmark(options)
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    render(report, Console().print)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        say(f"Report written to {out}")


if __name__ == "__main__":
    app()
