"""The main job end to end, as a person runs it: `autorag run FOLDER` with no Ollama installed.

Real everything: espeak-ng speech, faster-whisper tiny.en, the offline diarizer, the packaged
Ollama-compatible server with smollm2:135m (llama.cpp) and all-minilm (sentence-transformers),
LanceDB and Dagster's embedded storage.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter

from autorag_dagster.localserve import LocalServer

ASSETS = {"audio", "transcript", "diarization", "speaker_transcript", "topic_tree", "embeddings", "viz"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def autorag(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("autorag")), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="module")
def main_job(tmp_path_factory, request):
    two_speakers = request.getfixturevalue("two_speakers")
    root = tmp_path_factory.mktemp("main-job")
    folder = root / "my recordings"
    folder.mkdir()
    shutil.copy(two_speakers.path, folder / "garden meeting.wav")
    port = free_port()  # nothing answers there: the job must start the packaged server itself
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTORAG_", "OLLAMA_", "DAGSTER_"))},
        "AUTORAG_OLLAMA_BASE_URL": f"http://127.0.0.1:{port}",
        "AUTORAG_DATA_DIR": str(root / "data"),
        "PYANNOTE_METRICS_ENABLED": "false",
        "COLUMNS": "200",
    }
    result = autorag("run", str(folder), "--query", "how many trees were planted", env=env, cwd=root)
    return root, env, result


def test_every_asset_and_check_with_the_packaged_models(main_job):
    root, _, result = main_job
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "starting the packaged Ollama-compatible server with smollm2:135m and all-minilm" in " ".join(output.split())

    with DagsterInstance.from_config(str(root / "data" / "dagster")) as instance:
        materialised = {
            (asset, r.partition_key)
            for asset in [*ASSETS, "lancedb_index"]
            for r in instance.fetch_materializations(AssetKey(asset), limit=10).records
        }
        checks = instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION))
        evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in checks]
    assert {(asset, "garden meeting.wav") for asset in ASSETS} <= materialised
    assert ("lancedb_index", None) in materialised
    assert len(evaluations) == 7 and all(e.passed for e in evaluations), [
        (e.check_name, e.description) for e in evaluations if not e.passed
    ]

    # What the job promises to print: where things are, and a sample search that finds the file.
    assert str(root / "data" / "viz" / "index.html") in output
    assert "segments__all-minilm-latest__384" in output
    assert "garden" in output.split("Results for")[1]

    data = root / "data" / "files"
    [folder] = list(data.iterdir())
    tree = json.loads((folder / "topics.json").read_text())
    assert tree["nodes"] and tree["model"] == "smollm2:135m"
    assert (folder / "transcript.srt").read_text().startswith("1\n")


def test_search_finds_the_file_afterwards(main_job):
    root, env, result = main_job
    assert result.returncode == 0
    # The configured model (nomic-embed-text) made no table here: the error says which model did.
    wrong = autorag("search", "trees", "--mode", "text", env=env, cwd=root)
    assert wrong.returncode == 1 and "set AUTORAG_EMBED_MODEL" in wrong.stderr and "all-minilm" in wrong.stderr

    text = autorag("search", "planted forty trees", "--mode", "text", "--json",
                   env={**env, "AUTORAG_EMBED_MODEL": "all-minilm"}, cwd=root)
    assert text.returncode == 0, text.stderr
    assert json.loads(text.stdout)[0]["file"] == "garden meeting.wav"

    # Hybrid search with the embedding model the job used, through the packaged server.
    with LocalServer(models_dir=root / "data" / "localserve-models", num_parallel=1) as server:
        hybrid_env = {**env, "AUTORAG_OLLAMA_BASE_URL": server.url, "AUTORAG_EMBED_MODEL": "all-minilm"}
        hybrid = autorag("search", "how many trees did they plant by the river", "--json", "--k", "3", env=hybrid_env, cwd=root)
    assert hybrid.returncode == 0, hybrid.stderr
    hits = json.loads(hybrid.stdout)
    assert hits and hits[0]["file"] == "garden meeting.wav"
