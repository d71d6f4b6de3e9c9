"""scripts/library_bench.py on a small library and table: every report field, with sane types.

No timing is asserted (the figures are the benchmark's output); what is checked is that each
figure is there, of the right type, and that the counts follow from how the sensor works.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.scripts.test_bench import NUMBER, check_shape

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "library_bench.py"


def load_script():
    spec = importlib.util.spec_from_file_location("library_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["library_bench"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


library_bench = load_script()

QUERY = {"first_s": NUMBER, "median_s": NUMBER, "bytes": int}
MODE = {"queries": int, "p50_ms": NUMBER, "p95_ms": NUMBER}
SHAPE = {
    "date": str,
    "command": str,
    "machine": dict,
    "versions": dict,
    "settings": {
        "files": int,
        "ticks": int,
        "run_assets": list,
        "requests": int,
        "rows": int,
        "dim": int,
        "queries": int,
    },
    "sensor": {
        "files": int,
        "partitions": int,
        "first_tick_s": NUMBER,
        "first_tick_partitions_add_s": NUMBER,
        "partition_add_requests": int,
        "runs_requested": int,
        "files_in_the_run": int,
        "steady_tick_s": {"median": NUMBER, "min": NUMBER, "ticks": int},
        "cursor_bytes": int,
        "state_snapshot_bytes": int,
        "run": {"assets": list, "wall_s": NUMBER, "steps_s": dict, "whisper_loads": int},
        "after_one_change": {"tick_s": NUMBER, "files_hashed": int, "requested": list, "changed": str, "touched": str},
        "measured": bool,
    },
    "asset_page": {
        "asset": str,
        "requests": int,
        "partition_health": QUERY,
        "asset_overview": QUERY,
        "partitions_listed": int,
        "materialized_partitions": int,
        "partition_stats": dict,
        "page_median_s": NUMBER,
        "measured": bool,
    },
    "lancedb": {
        "rows": int,
        "dim": int,
        "file_rows": int,
        "write_s": NUMBER,
        "index_build_s": NUMBER,
        "indices": list,
        "actions": list,
        "modes": dict,
        "merge_insert_one_file_ms": {"new_file_median": NUMBER, "rewrite_median": NUMBER, "repeats": int},
        "maintain_after_one_file_s": NUMBER,
        "measured": bool,
    },
}


@pytest.mark.slow
def test_library_bench_writes_every_field_on_a_small_library(tmp_path):
    out = tmp_path / "library.json"
    args = [
        *("--files", "24", "--ticks", "2", "--requests", "2", "--run-assets", "audio,transcript"),
        *("--rows", "1500", "--dim", "32", "--queries", "4"),
        *("--workdir", str(tmp_path / "work"), "--out", str(out)),
    ]
    result = CliRunner().invoke(library_bench.app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Folder sensor over 24 files" in result.output and "LanceDB (measured)" in result.output
    report = json.loads(out.read_text())
    check_shape(report, SHAPE)

    sensor = report["sensor"]
    # One batch of partitions, one run over every file, Whisper loaded once in it.
    assert sensor["partitions"] == 24 and sensor["partition_add_requests"] == 1
    assert (sensor["runs_requested"], sensor["files_in_the_run"]) == (1, 24)
    assert sensor["run"]["whisper_loads"] == 1 and {"audio", "transcript"} <= set(sensor["run"]["steps_s"])
    assert sensor["cursor_bytes"] < 100 < sensor["state_snapshot_bytes"]
    # One file changed and one touched: those two are read, the changed one alone is run again.
    change = sensor["after_one_change"]
    assert change["files_hashed"] == 2 and change["requested"] == [change["changed"]]

    page = report["asset_page"]
    assert page["partitions_listed"] == 24 and page["materialized_partitions"] == 24
    assert page["partition_stats"]["numPartitions"] == 24

    lance = report["lancedb"]
    assert lance["rows"] == 1500 and lance["dim"] == 32
    assert {"FTS(text)", "BTree(file_key)", "BTree(row_id)"} <= set(lance["indices"])
    assert set(lance["modes"]) == {"hybrid", "vector", "text"}
    for mode, figures in lance["modes"].items():
        check_shape(figures, MODE, f"lancedb.modes.{mode}")
        assert figures["queries"] == 4


def test_nothing_to_measure_is_refused():
    result = CliRunner().invoke(library_bench.app, ["--files", "0", "--rows", "0"])
    assert result.exit_code == 1 and "nothing to measure" in result.output
