#!/usr/bin/env python
"""Benchmark of a library of thousands of files: the folder sensor, the asset page's GraphQL and LanceDB at scale.

    .venv/bin/python scripts/library_bench.py --files 2000 --rows 1000000 --out library.json

1. The folder sensor over ``--files`` short generated WAV files in one folder (distinct content,
   written long enough ago to count as complete), evaluated as the daemon evaluates it, against a
   Dagster instance on disk and the local model server (its readiness check is part of a tick):
   the first tick (every file probed, the partitions added), steady-state ticks (median of
   ``--ticks``), the cursor's and the state snapshot's size, the one run the first tick requests
   executed (``--run-assets``: the stages it runs; Whisper's loads counted), then a tick after one
   file's content changed and another was only touched: its seconds, the files it read to hash.
2. The Dagster webserver (``dagster-webserver``, a child process on that instance) asked for the
   ``transcript`` asset page's partition data over HTTP GraphQL: the UI's own partition health
   query (copied from dagster-webserver's UI bundle) and the asset's overview (definition,
   partition counts, latest materialisation); first request and median of ``--requests``.
3. LanceDB at ``--rows`` rows of the segment table's schema (synthetic texts and unit vectors of
   ``--dim`` dimensions, bulk-written in files of ``FILE_ROWS`` rows): the build of the indexes
   ``lancedb_index`` builds (``SegmentStore.maintain``), hybrid search p50/p95 (and vector and
   text), ``merge_insert`` of one file's rows (a new file, then the same file rewritten: what the
   ``embeddings`` asset does), and ``maintain`` again after that file landed.

Each part can be skipped (``--files 0``, ``--rows 0``).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import datetime as dt
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import typer
from rich.console import Console

SCRIPTS = Path(__file__).resolve().parent


def _load_bench():
    """scripts/bench.py: its machine and version records, the local model server, the search timing."""
    if "bench" in sys.modules:
        return sys.modules["bench"]
    spec = importlib.util.spec_from_file_location("bench", SCRIPTS / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
console = Console(stderr=True)
say = bench.say

OLD_S = 3600.0  # the files were written this long ago: complete (the sensor's settle time is 30 s)
FILE_ROWS = 120  # rows of one file in the segment table: a long recording's chunks and topic nodes
BULK_FILES = 400  # files per bulk write of the synthetic table
MERGE_REPEATS = 5
WEBSERVER_TIMEOUT_S = 180.0

# The UI's query for an asset's partition bar and partition list, as dagster-webserver 1.13's
# asset page sends it (copied from its UI bundle; operation name kept).
PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}
"""
# The page's header and overview: the definition, its partition counts, the latest materialisation.
ASSET_OVERVIEW_QUERY = """
query AssetOverview($assetKey: AssetKeyInput!) {
  assetOrError(assetKey: $assetKey) {
    ... on Asset {
      id
      key { path }
      definition {
        id
        description
        partitionDefinition { description }
        partitionStats { numMaterialized numMaterializing numFailed numPartitions }
      }
      assetMaterializations(limit: 1) { timestamp runId partition }
    }
  }
}
"""
QUERIES = {"partition_health": PARTITION_HEALTH_QUERY, "asset_overview": ASSET_OVERVIEW_QUERY}


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    files: int = 2000
    ticks: int = 5
    run_assets: tuple[str, ...] = ("audio",)
    requests: int = 5
    rows: int = 1_000_000
    dim: int = 384
    queries: int = 50
    workdir: Path | None = None


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


# --- 1. the folder sensor ----------------------------------------------------------------------
@dataclass
class Library:
    settings: Any  # Settings
    dagster: Any  # EmbeddedDagster
    keys: list[str]

    @property
    def audio_dir(self) -> Path:
        return Path(self.settings.audio_dir)


def tick(library: Library, cursor: str | None) -> tuple[Any, float, float]:
    """One evaluation of the folder sensor, as the daemon runs it: (result, evaluation seconds,
    seconds to add the partitions it asks for)."""
    from dagster import SensorResult, build_sensor_context

    from autorag_dagster.defs.resources import OllamaResource, StorageResource
    from autorag_dagster.defs.sensors import audio_folder_sensor

    resources = {
        "storage": StorageResource.from_settings(library.settings),
        "ollama": OllamaResource.from_settings(library.settings),
    }
    instance = library.dagster.instance
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result, seconds = timed(lambda: audio_folder_sensor(context))
    if not isinstance(result, SensorResult):
        raise BenchError(f"the folder sensor skipped: {result.skip_message}")
    started = time.perf_counter()
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result, seconds, time.perf_counter() - started


def execute(library: Library, request, assets: Sequence[str]):
    """The run a tick requested, executed in this process on the same instance."""
    dagster = library.dagster
    job = dagster.job(list(assets))
    return job.execute_in_process(
        instance=dagster.instance,
        partition_key=request.partition_key,
        tags={**request.tags, **dagster.tags},
        run_config=dagster.run_config,
        raise_on_error=False,
    )


def sensor_section(library: Library, ticks: int, run_assets: Sequence[str]) -> dict[str, Any]:
    from autorag_dagster.core.hashes import HashIndex
    from autorag_dagster.defs.partitions import audio_files, covered_keys
    from autorag_dagster.runner import failure_text, materialization_metadata, step_seconds

    instance = library.dagster.instance
    files = len(library.keys)
    say(f"Folder sensor: first tick over {files} file(s) ...")
    first, first_s, add_s = tick(library, None)
    [run] = [r for r in first.run_requests if r.job_name == "process_audio"]
    covered = covered_keys(instance, run.partition_key, run.tags)
    if sorted(covered) != sorted(library.keys):
        raise BenchError(f"the first tick's run covers {len(covered)} of {files} files")
    partition_requests = len(first.dynamic_partitions_requests)
    cursor = first.cursor
    snapshot = Path(library.settings.layout.folder_sensor_state) / f"{json.loads(cursor)['state']}.json"

    say(f"  {first_s:.2f} s; {ticks} steady-state tick(s) ...")
    steady = []
    for _ in range(ticks):
        result, seconds, _ = tick(library, cursor)
        if result.run_requests:
            raise BenchError("a steady-state tick requested a run")
        steady.append(seconds)
        cursor = result.cursor

    say(f"  the requested run ({', '.join(run_assets)}) over {len(covered)} file(s), in one run ...")
    outcome, run_s = timed(lambda: execute(library, run, run_assets))
    if not outcome.success:
        raise BenchError(f"the run over the library failed: {failure_text(outcome)}")
    whisper = [
        m["gpu_timeline"].count(bench.WHISPER_ACQUIRE) for m in materialization_metadata([outcome], "transcript")
    ]

    # One file gets new content; another is only touched (same bytes, a new time).
    changed, touched = library.keys[len(library.keys) // 2], library.keys[-1]
    (library.audio_dir / changed).write_bytes((library.audio_dir / library.keys[0]).read_bytes())
    later = time.time() - OLD_S / 2
    os.utime(library.audio_dir / changed, (later, later))
    os.utime(library.audio_dir / touched, (later, later))
    read = HashIndex.files_read
    after, after_s, _ = tick(library, cursor)
    hashed = HashIndex.files_read - read
    requested = [k for r in after.run_requests for k in covered_keys(instance, r.partition_key, r.tags)]
    return {
        "files": files,
        "partitions": len(instance.get_dynamic_partitions(audio_files.name)),
        "first_tick_s": round(first_s, 3),
        "first_tick_partitions_add_s": round(add_s, 3),
        "partition_add_requests": partition_requests,
        "runs_requested": len(first.run_requests),
        "files_in_the_run": len(covered),
        "steady_tick_s": {"median": median(steady), "min": round(min(steady), 3), "ticks": len(steady)},
        "cursor_bytes": len(cursor.encode()),
        "state_snapshot_bytes": snapshot.stat().st_size,
        "run": {
            "assets": list(run_assets),
            "wall_s": round(run_s, 2),
            "steps_s": step_seconds([outcome]),
            "whisper_loads": sum(whisper) if whisper else None,
        },
        "after_one_change": {
            "tick_s": round(after_s, 3),
            "files_hashed": hashed,
            "requested": requested,
            "changed": changed,
            "touched": touched,
        },
        "measured": True,
    }


# --- 2. the asset page over GraphQL --------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def webserver(library: Library, log: Path) -> Iterator[str]:
    """``dagster-webserver`` on the library's instance and the project's definitions; its URL."""
    settings = library.settings
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(library.dagster.home),
        "AUTORAG_AUDIO_DIR": str(settings.audio_dir),
        "AUTORAG_DATA_DIR": str(settings.data_dir),
        "AUTORAG_OLLAMA_BASE_URL": settings.ollama_base_url,
        "AUTORAG_LLM_MODEL": settings.llm_model,
        "AUTORAG_EMBED_MODEL": settings.embed_model,
    }
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        *("-m", "autorag_dagster.definitions", "-h", "127.0.0.1", "-p", str(port)),
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WEBSERVER_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(f"dagster-webserver exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/server_info", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"dagster-webserver did not answer within {WEBSERVER_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def graphql(url: str, query: str, **variables: Any) -> tuple[dict, float, int]:
    """(data, seconds, response bytes) of one POST to /graphql."""
    started = time.perf_counter()
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=300)
    seconds = time.perf_counter() - started
    body = response.json()
    if response.is_error or body.get("errors"):
        raise BenchError(f"GraphQL answered {response.status_code}: {body.get('errors') or response.text[:500]}")
    return body["data"], seconds, len(response.content)


def graphql_section(library: Library, requests: int, workdir: Path) -> dict[str, Any]:
    say("Asset page of transcript over GraphQL (dagster-webserver, a child process) ...")
    figures: dict[str, Any] = {"asset": "transcript", "requests": requests}
    with webserver(library, workdir / "webserver.log") as url:
        variables = {"assetKey": {"path": ["transcript"]}}
        for name, query in QUERIES.items():
            (data, first_s, size), timings = graphql(url, query, **variables), []
            for _ in range(requests):
                _, seconds, _ = graphql(url, query, **variables)
                timings.append(seconds)
            figures[name] = {"first_s": round(first_s, 3), "median_s": median(timings), "bytes": size}
            if name == "partition_health":
                node = data["assetNodeOrError"]
                figures["partitions_listed"] = len(node["partitionKeysByDimension"][0]["partitionKeys"])
                figures["materialized_partitions"] = len(node["assetPartitionStatuses"]["materializedPartitions"])
            else:
                figures["partition_stats"] = data["assetOrError"]["definition"]["partitionStats"]
    figures["page_median_s"] = round(sum(figures[name]["median_s"] for name in QUERIES), 3)
    figures["measured"] = True
    return figures


# --- 3. LanceDB at scale -------------------------------------------------------------------------
def file_rows(store, rng, words: Sequence[str], file_key: str, count: int) -> pa.RecordBatch:
    """``count`` rows of one file, of the segment table's schema (synthetic text and vectors)."""
    from autorag_dagster.core.store import row_id, segment_schema

    vectors = bench.unit_vectors(rng, count, store.dim)
    rows = []
    for i in range(count):
        start = float(i * 30)
        rows.append(
            {
                "row_id": row_id(file_key, "chunk", i),
                "file_key": file_key,
                "kind": "chunk",
                "level": 0,
                "path": f"{i // 10 + 1}",
                "start": start,
                "end": start + 30,
                "speakers": ["SPEAKER_00"],
                "text": " ".join(rng.choice(words, size=int(rng.integers(40, 121)))),
                "title": "",
                "summary": "",
                "vector": vectors[i],
                "embedding_model": store.embedding_model,
                "source_hash": "",
            }
        )
    return pa.RecordBatch.from_pylist(rows, schema=segment_schema(store.embedding_model, store.dim))


def bulk_table(uri: str, rows: int, dim: int, words: Sequence[str], rng) -> tuple[Any, float]:
    """A segment table of ``rows`` rows in files of FILE_ROWS rows, appended in large batches (a
    merge per file would make building the table itself the benchmark)."""
    from autorag_dagster.core.store import SegmentStore

    store = SegmentStore(uri, bench.SEARCH_MODEL, dim)
    table = store._open_or_create()
    started = time.perf_counter()
    written = 0
    number = 0
    while written < rows:
        batch = []
        for _ in range(BULK_FILES):
            count = min(FILE_ROWS, rows - written)
            if count <= 0:
                break
            batch.append(file_rows(store, rng, words, f"library/{number:06d}.wav", count))
            written += count
            number += 1
        table.add(pa.Table.from_batches(batch))
        say(f"  {written}/{rows} rows written")
    return store, time.perf_counter() - started


def merge_one_file(store, rng, words: Sequence[str], file_key: str) -> float:
    """Seconds of ``write_partition`` (one merge_insert) of one file's FILE_ROWS rows."""
    from autorag_dagster.core.chunking import Record

    batch = file_rows(store, rng, words, file_key, FILE_ROWS).to_pylist()
    pairs = [
        (Record(kind="chunk", start=r["start"], end=r["end"], speakers=("SPEAKER_00",), text=r["text"]), r["vector"])
        for r in batch
    ]
    _, seconds = timed(lambda: store.write_partition(file_key, pairs))
    return seconds


def lancedb_section(workdir: Path, rows: int, dim: int, queries: int) -> dict[str, Any]:
    from autorag_dagster.core.search import MODES

    rng = np.random.default_rng(11)
    words = bench.vocabulary()
    say(f"LanceDB: {rows} rows of {dim}-d vectors, bulk-written ...")
    store, write_s = bulk_table(str(workdir / f"lancedb-{rows}"), rows, dim, words, rng)
    say("  building the indexes lancedb_index builds (SegmentStore.maintain) ...")
    report, maintain_s = timed(store.maintain)
    texts = [" ".join(rng.choice(words, size=2)) for _ in range(queries)]
    by_text = dict(zip(texts, (v.tolist() for v in bench.unit_vectors(rng, queries, dim))))
    modes = {}
    for mode in MODES:
        say(f"  {queries} {mode} queries ...")
        timings = bench.time_queries(store, by_text, mode)
        modes[mode] = {
            "queries": len(timings),
            "p50_ms": round(float(np.percentile(timings, 50)), 2),
            "p95_ms": round(float(np.percentile(timings, 95)), 2),
        }
    say(f"  merge_insert of one file's {FILE_ROWS} rows, {MERGE_REPEATS} new files and {MERGE_REPEATS} rewrites ...")
    inserts = [merge_one_file(store, rng, words, f"new/{n}.wav") for n in range(MERGE_REPEATS)]
    rewrites = [merge_one_file(store, rng, words, "new/0.wav") for _ in range(MERGE_REPEATS)]
    _, after_s = timed(store.maintain)
    return {
        "rows": rows,
        "dim": dim,
        "file_rows": FILE_ROWS,
        "write_s": round(write_s, 2),
        "index_build_s": round(maintain_s, 2),
        "indices": report.indices,
        "actions": report.actions,
        "modes": modes,
        "merge_insert_one_file_ms": {
            "new_file_median": round(statistics.median(inserts) * 1000, 1),
            "rewrite_median": round(statistics.median(rewrites) * 1000, 1),
            "repeats": MERGE_REPEATS,
        },
        "maintain_after_one_file_s": round(after_s, 2),
        "measured": True,
    }


# --- the benchmark -----------------------------------------------------------------------------
def run_benchmark(options: Options) -> dict[str, Any]:
    if options.files < 0 or options.rows < 0 or options.ticks < 1 or options.requests < 1:
        raise BenchError("--files and --rows must be 0 or more, --ticks and --requests at least 1")
    if not options.files and not options.rows:
        raise BenchError("nothing to measure: --files and --rows are both 0")
    with ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autorag-library-")))
        return measure(options, workdir, stack)


def measure(options: Options, workdir: Path, stack: ExitStack) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    sensor = page = lance = None
    if options.files:
        from autorag_dagster.runner import EmbeddedDagster
        from autorag_dagster.samples import tiny_library

        audio = workdir / "audio"
        say(f"Writing {options.files} short WAV files into {audio} ...")
        keys = tiny_library(audio, options.files, mtime=time.time() - OLD_S)
        endpoint = stack.enter_context(bench.model_endpoint(bench.Models.deterministic, workdir, audio))
        settings = endpoint.settings
        dagster = stack.enter_context(EmbeddedDagster(settings, home=workdir / "dagster"))
        library = Library(settings, dagster, keys)
        sensor = sensor_section(library, options.ticks, options.run_assets)
        page = graphql_section(library, options.requests, workdir)
    if options.rows:
        lance = lancedb_section(workdir, options.rows, options.dim, options.queries)
    return {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": bench.machine(),
        "versions": bench.versions(),
        "settings": {
            "files": options.files,
            "ticks": options.ticks,
            "run_assets": list(options.run_assets),
            "requests": options.requests,
            "rows": options.rows,
            "dim": options.dim,
            "queries": options.queries,
        },
        "sensor": sensor,
        "asset_page": page,
        "lancedb": lance,
    }


def render(report: dict[str, Any], out: Callable[[Any], None]) -> None:
    if sensor := report["sensor"]:
        rows = [
            ("first tick (s)", sensor["first_tick_s"]),
            (
                "partitions added (s) / add requests",
                f"{sensor['first_tick_partitions_add_s']} / {sensor['partition_add_requests']}",
            ),
            ("runs requested / files in the run", f"{sensor['runs_requested']} / {sensor['files_in_the_run']}"),
            ("steady-state tick, median (s)", sensor["steady_tick_s"]["median"]),
            ("cursor (bytes) / state snapshot (bytes)", f"{sensor['cursor_bytes']} / {sensor['state_snapshot_bytes']}"),
            (f"the run ({', '.join(sensor['run']['assets'])}) wall (s)", sensor["run"]["wall_s"]),
            ("Whisper loads in the run", sensor["run"]["whisper_loads"]),
            ("tick after one change (s)", sensor["after_one_change"]["tick_s"]),
            ("files hashed after one change + one touch", sensor["after_one_change"]["files_hashed"]),
            ("files requested after it", len(sensor["after_one_change"]["requested"])),
        ]
        out(bench.key_values(f"Folder sensor over {sensor['files']} files (measured)", rows))
    if page := report["asset_page"]:
        rows = [
            (
                f"{name}: first / median (s), bytes",
                f"{page[name]['first_s']} / {page[name]['median_s']}, {page[name]['bytes']}",
            )
            for name in QUERIES
        ] + [
            ("asset page, sum of medians (s)", page["page_median_s"]),
            ("partitions listed", page["partitions_listed"]),
        ]
        out(bench.key_values("transcript asset page over GraphQL (measured)", rows))
    if lance := report["lancedb"]:
        merge = lance["merge_insert_one_file_ms"]
        rows = [
            ("rows / dim", f"{lance['rows']} / {lance['dim']}"),
            ("bulk write (s)", lance["write_s"]),
            ("index build, maintain() (s)", lance["index_build_s"]),
            *((f"{mode} p50 / p95 (ms)", f"{f['p50_ms']} / {f['p95_ms']}") for mode, f in lance["modes"].items()),
            (
                f"merge_insert of one file ({lance['file_rows']} rows): new / rewrite (ms)",
                f"{merge['new_file_median']} / {merge['rewrite_median']}",
            ),
            ("maintain() after that file (s)", lance["maintain_after_one_file_s"]),
        ]
        out(bench.key_values("LanceDB (measured)", rows))


app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@app.command()
def main(
    files: int = typer.Option(2000, min=0, help="Files in the generated library folder (0 skips the sensor and page)."),
    ticks: int = typer.Option(5, min=1, help="Steady-state sensor ticks (the report quotes their median)."),
    run_assets: str = typer.Option("audio", help="Assets of the one run over the library, comma-separated."),
    requests: int = typer.Option(5, min=1, help="Timed GraphQL requests per query."),
    rows: int = typer.Option(1_000_000, min=0, help="Rows of the LanceDB table (0 skips it)."),
    dim: int = typer.Option(384, min=2, help="Vector dimension (384: all-minilm, 768: nomic-embed-text)."),
    queries: int = typer.Option(50, min=1, help="Timed queries per search mode."),
    workdir: Path | None = typer.Option(None, help="Keep the library, instance and table here (default: a temp dir)."),
    out: Path | None = typer.Option(None, help="Write the JSON report here."),
) -> None:
    assets = tuple(a.strip() for a in run_assets.split(",") if a.strip())
    try:
        report = run_benchmark(Options(files, ticks, assets, requests, rows, dim, queries, workdir))
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
