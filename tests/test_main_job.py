"""The main job end to end, as a person runs it: `autorag run FOLDER` with no Ollama installed.

Real everything: espeak-ng speech, faster-whisper tiny.en, the offline diarizer, the packaged
Ollama-compatible server with smollm2:135m (llama.cpp) and all-minilm (sentence-transformers),
LanceDB and Dagster's embedded storage.
"""

from __future__ import annotations

import json
import os
import shlex
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
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
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
    # Every check ran; the blocking ones passed. The topic_tree_quality warning may fire with a
    # 135M model (it says which stages fell back), so it is asserted on in tests of its own.
    errors = [e for e in evaluations if e.severity.value == "ERROR"]
    assert len(evaluations) == 8 and len(errors) == 7 and all(e.passed for e in errors), [
        (e.check_name, e.description) for e in errors if not e.passed
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


def test_the_search_command_the_job_prints_works_as_printed(main_job):
    root, env, result = main_job
    assert result.returncode == 0
    output = " ".join((result.stdout + result.stderr).split())
    printed = output.split("Search again later with: ")[1].split(" autorag ")[0].strip()
    command = printed if printed.endswith('"') else printed.rsplit('"', 1)[0] + '"'
    assert command == '.venv/bin/autorag search "how many trees were planted"'
    repo = Path(__file__).resolve().parents[1]
    # Verbatim, from the project folder, with nothing else started: no Ollama answers, so the
    # search starts the packaged server on the models the job pulled, as the job did.
    found = subprocess.run(
        [*shlex.split(command), "--json"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and hits[0]["file"] == "garden meeting.wav"
    assert "packaged" in found.stderr  # it says which server answered


def test_search_finds_the_file_afterwards(main_job):
    root, env, result = main_job
    assert result.returncode == 0
    text = autorag("search", "planted forty trees", "--mode", "text", "--json", env=env, cwd=root)
    assert text.returncode == 0, text.stderr
    assert json.loads(text.stdout)[0]["file"] == "garden meeting.wav"

    # With a running server and a model that made no table here, the error says which model did.
    with LocalServer(models_dir=root / "data" / "localserve-models", num_parallel=1) as server:
        wrong = autorag(
            "search", "trees", "--mode", "text", env={**env, "AUTORAG_OLLAMA_BASE_URL": server.url}, cwd=root
        )
        assert wrong.returncode == 1 and "set AUTORAG_EMBED_MODEL" in wrong.stderr and "all-minilm" in wrong.stderr
        # Hybrid search with the embedding model the job used, through the packaged server.
        hybrid_env = {**env, "AUTORAG_OLLAMA_BASE_URL": server.url, "AUTORAG_EMBED_MODEL": "all-minilm"}
        hybrid = autorag(
            "search", "how many trees did they plant by the river", "--json", "--k", "3", env=hybrid_env, cwd=root
        )
    assert hybrid.returncode == 0, hybrid.stderr
    hits = json.loads(hybrid.stdout)
    assert hits and hits[0]["file"] == "garden meeting.wav"


def test_naming_a_voice_in_three_commands(main_job):
    """`autorag speakers list`, `autorag speakers name`, then search by the name: only what shows
    names is re-materialised, never Whisper or the diarizer."""
    root, env, result = main_job
    assert result.returncode == 0
    listed = autorag("speakers", "list", "--json", env=env, cwd=root)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["identity"] for r in rows] == ["VOICE_0001", "VOICE_0002"]  # the file's two voices
    assert all(r["files"][0][0] == "garden meeting.wav" for r in rows)
    with DagsterInstance.from_config(str(root / "data" / "dagster")) as instance:
        before = {a: len(instance.fetch_materializations(AssetKey(a), limit=100).records) for a in ASSETS}

    named = autorag("speakers", "name", "VOICE_0002", "Bob Stone", env=env, cwd=root)
    assert named.returncode == 0, named.stdout + named.stderr
    assert "VOICE_0002: Bob Stone" in (root / "my recordings" / "speakers.yaml").read_text()
    with DagsterInstance.from_config(str(root / "data" / "dagster")) as instance:
        after = {a: len(instance.fetch_materializations(AssetKey(a), limit=100).records) for a in ASSETS}
    assert {a for a in ASSETS if after[a] > before[a]} == {"speaker_transcript", "topic_tree", "embeddings", "viz"}

    [folder] = list((root / "data" / "files").iterdir())
    assert "<v Bob Stone>" in (folder / "speaker_transcript.vtt").read_text()
    assert "Bob Stone" in next((root / "data" / "viz").glob("garden*.html")).read_text()
    found = autorag("search", "trees", "--speaker", "Bob Stone", "--mode", "text", "--json", env=env, cwd=root)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and all("Bob Stone" in hit["speakers"] for hit in hits)


def test_files_that_are_not_audio_get_one_plain_sentence_each(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("these are my meeting notes, not a recording\n")
    (folder / "notes.mkv").write_text("a container name, no container\n")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTORAG_", "OLLAMA_", "DAGSTER_"))},
        "AUTORAG_OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "AUTORAG_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    result = autorag("run", str(folder), env=env, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "dagster._core" not in output
    flat = " ".join(output.split())
    assert "empty.wav failed" not in flat  # left out before any run, said once as it happens
    assert flat.count("Leaving out empty.wav") == 1 and "the file is empty (0 bytes)" in flat
    assert flat.count("Leaving out notes.mp3") == 1 and "Replace the file or remove it from the folder" in flat
    assert flat.count("Leaving out notes.mkv") == 1
    assert "Not audio by their extension, left out: cover.jpg (accepted: " in flat
