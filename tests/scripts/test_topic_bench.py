"""scripts/topic_bench.py on the sample with the deterministic backend: the figures are there, in
range, and marked measured. No quality target is asserted (the figures are the benchmark's output)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "topic_bench.py"


def load_script():
    spec = importlib.util.spec_from_file_location("topic_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["topic_bench"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


topic_bench = load_script()

SHARES = ("boundary_precision", "boundary_recall", "boundary_f1", "pk", "titles_naming_share")
COUNTS = ("level1_nodes", "nodes", "prompt_echo_titles", "prompt_echo_summaries", "first_words_titles", "llm_calls")


def test_arguments():
    args = topic_bench.parse_args(["--files", "sample,long", "--backend", "deterministic", "--minutes", "3"])
    assert (args.files, args.backends, args.minutes) == (["sample", "long"], ["deterministic"], 3.0)
    assert topic_bench.parse_args([]).backends == ["packaged", "deterministic"]
    with pytest.raises(SystemExit):
        topic_bench.parse_args(["--files", "nope"])


@pytest.mark.slow
def test_the_sample_with_the_deterministic_backend(tmp_path, capsys):
    path = tmp_path / "figures.json"
    report = topic_bench.main(
        ["--files", "sample", "--backend", "deterministic", "--work", str(tmp_path / "work"), "--json", str(path)]
    )
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    [entry] = report["files"]
    assert entry["file"] == "sample" and 100 < entry["duration_s"] < 160
    assert [subject for *_, subject in entry["subjects"]] == ["garden", "budget", "festival"]
    speech = entry["speech"]
    assert speech["measured"] is True
    assert set(speech["seconds"]) == set(topic_bench.SPEECH_STAGES)
    assert all(v > 0 for v in speech["seconds"].values())
    assert speech["words"] > 150 and speech["speakers_true"] == 2 and speech["speakers_found"] >= 1

    [run] = entry["runs"]
    assert (run["backend"], run["model"]) == ("deterministic", topic_bench.DETERMINISTIC_LLM)
    figures = run["figures"]
    assert set(run["measured"]) == set(figures) and all(run["measured"].values())
    for name in SHARES:
        assert 0.0 <= figures[name] <= 1.0, name
    for name in COUNTS:
        assert isinstance(figures[name], int) and figures[name] >= 0, name
    assert figures["true_subjects"] == 3 and figures["level1_nodes"] >= 1
    assert figures["llm_calls"] > 0
    assert set(figures["stage_seconds"]) >= {"level1", "summary"}
    assert all(isinstance(v, int) and v > 0 for v in figures["fallbacks"].values())
    assert len(run["outline"]) == figures["nodes"]

    printed = capsys.readouterr().out
    assert "Topic quality" in printed and "boundary F1" in printed and "deterministic" in printed

    # A second run reuses the audio and, when asked, the speech transcript (then not measured).
    again = topic_bench.main(
        ["--files", "sample", "--backend", "deterministic", "--work", str(tmp_path / "work"), "--reuse-speech"]
    )
    assert again["files"][0]["speech"]["measured"] is False
    assert again["files"][0]["runs"][0]["figures"]["level1_nodes"] == figures["level1_nodes"]


def test_the_script_as_transcript_needs_no_speech_models(tmp_path):
    report = topic_bench.main(
        ["--files", "five", "--backend", "deterministic", "--speech", "script", "--work", str(tmp_path)]
    )
    [entry] = report["files"]
    assert entry["speech"]["source"] == "script" and entry["speech"]["measured"] is False
    assert entry["speech"]["speakers_found"] == entry["speech"]["speakers_true"] == 4
    figures = entry["runs"][0]["figures"]
    assert figures["true_subjects"] == 5
    assert all(0.0 <= figures[name] <= 1.0 for name in SHARES)
