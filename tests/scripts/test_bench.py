"""scripts/bench.py on a tiny corpus with the deterministic models: every report field, with sane types.

No timing is asserted (the figures are the benchmark's output); what is checked is that each
figure is there, of the right type, and that the counts follow from how the graph runs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
NUMBER = (int, float)
ASSETS = {
    "audio",
    "transcript",
    "diarization",
    "speaker_transcript",
    "topic_tree",
    "embeddings",
    "viz",
    "lancedb_index",
}


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = load_bench()

LLM = {
    "source": str,
    "llm_calls": int,
    "prompt_tokens": int,
    "output_tokens": int,
    "llm_loads": int,
    "llm_reloads": int,
    "max_in_flight": int,
    "embed_requests": int,
    "embed_loads": int,
}
MEMORY = {"self_mib": NUMBER, "children_mib": NUMBER}
SHAPE = {
    "date": str,
    "command": str,
    "machine": {
        "system": str,
        "arch": str,
        "cpu": str,
        "cpu_count": int,
        "cpus_usable": int,
        "ram_gib": NUMBER,
        "gpus": list,
        "python": str,
    },
    "versions": dict,
    "settings": {
        "models": str,
        "minutes": NUMBER,
        "files": int,
        "repeat": int,
        "compare_per_file": bool,
        "search_rows": list,
        "queries": int,
        "pipeline": dict,
    },
    "corpus": {"files": int, "audio_s": NUMBER, "durations_s": list},
    "graph": {
        "runs": int,
        "wall_s": NUMBER,
        "wall_s_each": list,
        "realtime_factor": NUMBER,
        "steps_s": dict,
        "whisper_loads": int,
        "llm": LLM,
        "transcript_vs_raw": {
            "step_s": NUMBER,
            "raw_load_s": NUMBER,
            "raw_transcribe_s": NUMBER,
            "raw_s": NUMBER,
            "ratio": NUMBER,
        },
    },
    "rerun": {
        "wall_s": NUMBER,
        "steps_s": dict,
        "cache_hits": int,
        "llm_calls": int,
        "llm_loads": int,
        "embed_requests": int,
    },
    "per_file": {
        "wall_s": NUMBER,
        "runs": int,
        "whisper_loads": int,
        "llm_loads": int,
        "llm_calls": int,
        "embed_loads": int,
    },
    "scale": list,
    "search": list,
    "memory": {"after_graph": MEMORY, "peak": MEMORY, "local_server_mib": NUMBER, "note": str},
}
SEARCH = {"rows": int, "dim": int, "write_s": NUMBER, "maintain_s": NUMBER, "indices": list, "modes": dict}
MODE = {"queries": int, "p50_ms": NUMBER, "p95_ms": NUMBER}


def check_shape(value, expected, where: str = "report") -> None:
    if isinstance(expected, dict):
        assert isinstance(value, dict), f"{where} is not an object: {value!r}"
        assert set(value) == set(expected), f"{where}: fields {sorted(value)} != {sorted(expected)}"
        for name, kind in expected.items():
            check_shape(value[name], kind, f"{where}.{name}")
    else:
        assert isinstance(value, expected), f"{where} = {value!r} is not {expected}"
        if isinstance(value, NUMBER) and not isinstance(value, bool):
            assert value >= 0, f"{where} = {value} is negative"


@pytest.mark.slow
def test_bench_writes_every_field_on_a_tiny_corpus(tmp_path):
    out = tmp_path / "bench.json"
    args = [
        "--minutes",
        "0.3",
        "--files",
        "2",
        "--search-rows",
        "2000",
        "--queries",
        "5",
        "--compare-per-file",
        "--models",
        "deterministic",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "--scale",
        "1,2",
    ]
    result = CliRunner().invoke(bench.app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "LanceDB search latency" in result.output
    report = json.loads(out.read_text())

    check_shape(report, SHAPE)
    (search,) = report["search"]
    check_shape(search, SEARCH, "search[0]")
    assert set(search["modes"]) == {"hybrid", "vector", "text"}
    for mode, figures in search["modes"].items():
        check_shape(figures, MODE, f"search[0].modes.{mode}")
        assert figures["queries"] == 5
    assert search["rows"] == 2000 and search["dim"] == 768  # nomic-embed-text's dimension
    assert "FTS(text)" in search["indices"]

    corpus, graph, rerun, per_file = report["corpus"], report["graph"], report["rerun"], report["per_file"]
    assert corpus["files"] == 2 and all(16 <= d <= 30 for d in corpus["durations_s"])
    assert ASSETS <= set(graph["steps_s"]) and ASSETS <= set(rerun["steps_s"])
    # One run over both files: Whisper and the LLM load once; one by one, once per file.
    assert graph["whisper_loads"] == 1 and graph["llm"]["llm_loads"] == 1
    assert graph["llm"]["source"] == "server event log" and graph["llm"]["llm_calls"] > 0
    assert graph["llm"]["prompt_tokens"] > 0 and graph["llm"]["output_tokens"] > 0
    assert 1 <= graph["llm"]["max_in_flight"] <= 8
    assert per_file["runs"] == 2 and per_file["whisper_loads"] == 2 and per_file["llm_loads"] == 2
    # One run over N files: each model loads once, whatever N.
    assert [row["files"] for row in report["scale"]] == [1, 2]
    for row in report["scale"]:
        assert (row["whisper_loads"], row["diarizer_loads"], row["llm_loads"], row["embed_loads"]) == (1, 1, 1, 1)
        assert row["measured"] is True and row["wall_per_file_s"] > 0
    # The rerun answers every LLM question from the cache.
    assert rerun["llm_calls"] == 0 and rerun["llm_loads"] == 0
    assert 0 < rerun["cache_hits"] <= graph["llm"]["llm_calls"]  # retried answers are cached once


def test_files_of_the_corpus_differ():
    first = [next(lines) for lines in [bench.file_lines(0)] for _ in range(6)]
    for index in (1, 2, 3):
        lines = bench.file_lines(index)
        assert [next(lines) for _ in range(6)] != first


@pytest.mark.parametrize("text", ["10k", "0", "100,-5"])
def test_search_rows_must_be_positive_counts(text):
    with pytest.raises(typer.BadParameter):
        bench.parse_rows(text)


def test_search_rows_parse():
    assert bench.parse_rows("10000,100_000") == (10_000, 100_000)
    assert bench.parse_rows("") == ()


LENGTH_ROW = {
    "key": str,
    "audio_s": NUMBER,
    "wall_s": NUMBER,
    "realtime_factor": NUMBER,
    "steps_s": dict,
    "wall_per_audio_min_s": NUMBER,
    "steps_per_audio_min_s": dict,
    "peak_rss_mib": {"main": NUMBER, "server": NUMBER},
    "topics": {
        "level1_nodes": int,
        "nodes": int,
        "longest_level1_s": NUMBER,
        "last_level1_start_s": NUMBER,
        "num_ctx": int,
        "largest_prompt_tokens": int,
        "fallback_counts": dict,
    },
    "load_average_after": list,
    "measured": bool,
    "per_minute_vs_first": dict,
}


@pytest.mark.slow
def test_several_lengths_measure_cost_against_length(tmp_path):
    out = tmp_path / "lengths.json"
    args = ["--minutes", "0.2,0.4", "--models", "deterministic", "--search-rows", "", "--workdir", str(tmp_path)]
    result = CliRunner().invoke(bench.app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Cost against length" in result.output and "peak RSS: model server (MiB)" in result.output
    report = json.loads(out.read_text())

    assert report["settings"]["minutes"] == [0.2, 0.4] and report["search"] == []
    first, second = report["lengths"]
    for row in (first, second):
        check_shape(row, LENGTH_ROW, row["key"])
        assert ASSETS <= set(row["steps_s"]) and row["measured"] is True
        assert row["realtime_factor"] == pytest.approx(row["audio_s"] / row["wall_s"], rel=0.01)
        assert row["wall_per_audio_min_s"] == pytest.approx(row["wall_s"] / (row["audio_s"] / 60), rel=0.01)
        # the peaks are this run's: the server's under the main process's, which holds Whisper and the graph
        assert 0 < row["peak_rss_mib"]["server"] < row["peak_rss_mib"]["main"]
    assert first["per_minute_vs_first"]["wall"] == 1.0
    assert 12 <= first["audio_s"] <= 22 and 24 <= second["audio_s"] <= 34  # whole lines, up to the length
    ratio = second["wall_per_audio_min_s"] / first["wall_per_audio_min_s"]
    assert second["per_minute_vs_first"]["wall"] == pytest.approx(ratio, abs=0.01)
    assert (tmp_path / "corpus" / "long-0.4min.wav").exists()


def test_the_long_recording_has_twelve_subjects_and_six_voices():
    lines = bench.long_lines()
    first_round = sum(len(bench.SUBJECT_BLOCKS[s]) for s in bench.LONG_ORDER) + len(bench.PODCAST)
    texts = {text for _, text in itertools.islice(bench.long_lines(), first_round)}
    subjects = [s for s in bench.LONG_ORDER if any(text in texts for _, text in bench.SUBJECT_BLOCKS[s])]
    assert len(subjects) + any(text in texts for _, text in bench.PODCAST) == 12
    voices = {voice for voice, _ in itertools.islice(lines, 3 * first_round)}
    assert voices == set(bench.ALL_VOICES) and len(voices) == 6


@pytest.mark.parametrize("text", ["", "ten", "10,0", "0.01"])
def test_minutes_must_be_lengths(text):
    with pytest.raises(typer.BadParameter):
        bench.parse_minutes(text)


def test_minutes_parse():
    assert bench.parse_minutes("2") == (2.0,)
    assert bench.parse_minutes("10, 30,60") == (10.0, 30.0, 60.0)
