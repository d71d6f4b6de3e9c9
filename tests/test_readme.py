"""Every command the README gives a person to type, run verbatim, in the order a new user would.

The commands run in a folder laid out like a fresh clone (the checkout's `.venv`, Makefile,
scripts and project files linked in), with no Ollama anywhere and no AUTORAG_* variables, so
`make run` makes `./data` there exactly as it would for the user. Real everything: espeak-ng,
faster-whisper tiny.en, the offline diarizer, the packaged server with smollm2:135m and
all-minilm, LanceDB, Dagster's embedded storage.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import av
import httpx
import pytest

from autorag_dagster.core.types import TopicTree
from tests.support.dagster_dev import wait_for

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
LINKED = (".venv", "Makefile", "scripts", "pyproject.toml", "workspace.yaml", "autorag_dagster")


def readme_commands() -> list[str]:
    """The command lines of the README's bash blocks, comments removed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].split(" # ")[0].strip()
            if command:
                commands.append(command)
    return commands


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTORAG_", "OLLAMA_", "DAGSTER_"))}
    return {**env, "HOME": str(home), "PYANNOTE_METRICS_ENABLED": "false", "COLUMNS": "200"}


def run(command: str, project: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        shlex.split(command), cwd=project, env=clean_env(project), capture_output=True, text=True, timeout=timeout
    )


def assert_legible(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "dagster._core" not in output, output[-4000:]
    return " ".join(output.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A clone's layout: the checkout's environment linked in, nothing else."""
    root = tmp_path_factory.mktemp("clone")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    return root


@pytest.fixture(scope="module")
def made_run(project):
    result = run("make run", project)
    return result


def test_the_readme_lists_only_commands_this_test_runs():
    covered = {
        "make run",
        "make test",
        "make dev",
        '.venv/bin/autorag search "how much money is left this year" --k 5',
        '.venv/bin/autorag search "festival" --speaker VOICE_0002 --mode text --json',
        ".venv/bin/autorag speakers list",
        '.venv/bin/autorag speakers name VOICE_0002 "Bob"',
        '.venv/bin/autorag search "festival" --speaker Bob --mode text --json',
        ".venv/bin/autorag --help",
        ".venv/bin/autorag run data/sample",
        '.venv/bin/autorag search "who will print the posters"',
        '.venv/bin/autorag ask "how much of the money have we spent so far"',
        '.venv/bin/autorag ask "who will print the posters"',
        ".venv/bin/autorag ollama-serve --port 11434",
        ".venv/bin/autorag models",
        ".venv/bin/autorag pull",
        ".venv/bin/autorag tune --vram-gb 24",
        ".venv/bin/python scripts/bench.py --help",
        ".venv/bin/autorag export chapters data/sample/sample-meeting.wav --embed data/sample-meeting-chapters.m4a",
    }
    # `make test` is what CI runs (.ci/run); every other command is run below.
    assert set(readme_commands()) == covered


def test_make_run_on_the_sample(made_run, project):
    flat = assert_legible(made_run)
    assert made_run.returncode == 0, flat[-4000:]
    assert "generated a" in flat and "sample meeting" in flat
    assert "Model loads: whisper 1, diarizer 1, llm 1, embedder 1" in flat
    [stored] = list((project / "data" / "files").glob("*/assets/topic_tree.json"))
    tree = TopicTree.model_validate(json.loads(stored.read_text())["value"])
    # Three clear subjects: the packaged model's tree has more than one chapter, and no title is
    # the transcript's first words.
    assert len(tree.nodes) >= 2, [n.title for n in tree.nodes]
    assert not any(n.title.lower().startswith("good morning") for n in tree.walk())
    assert (project / "data" / "logs" / "runs.log").stat().st_size > 0


def test_the_search_commands_after_make_run(made_run, project):
    assert made_run.returncode == 0
    money = run('.venv/bin/autorag search "how much money is left this year" --k 5', project)
    assert money.returncode == 0, money.stderr
    assert "sample-meeting.wav" in money.stdout and "this year" in money.stdout
    festival = run('.venv/bin/autorag search "festival" --speaker VOICE_0002 --mode text --json', project)
    assert festival.returncode == 0, festival.stderr
    hits = json.loads(festival.stdout)
    assert hits and all("VOICE_0002" in hit["speakers"] for hit in hits)
    posters = run('.venv/bin/autorag search "who will print the posters"', project)
    assert posters.returncode == 0 and "posters" in posters.stdout.lower(), posters.stderr


def test_the_chapters_command_after_make_run(made_run, project):
    assert made_run.returncode == 0
    sample = project / "data" / "sample" / "sample-meeting.wav"
    before = hashlib.sha256(sample.read_bytes()).hexdigest()
    command = (
        ".venv/bin/autorag export chapters data/sample/sample-meeting.wav --embed data/sample-meeting-chapters.m4a"
    )
    exported = run(command, project, timeout=300)
    flat = assert_legible(exported)
    assert exported.returncode == 0, flat[-3000:]
    [stored] = list((project / "data" / "files").glob("*/assets/topic_tree.json"))
    tree = TopicTree.model_validate(json.loads(stored.read_text())["value"])
    folder = stored.parent.parent
    lines = (folder / "chapters.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(tree.nodes) and lines[0].startswith("00:00 ")
    assert all(node.title.split()[0] in flat for node in tree.nodes)
    with av.open(str(project / "data" / "sample-meeting-chapters.m4a")) as container:
        titles = [chapter["metadata"]["title"] for chapter in container.chapters()]
    assert titles == [" ".join(node.title.split()) for node in tree.nodes]
    assert hashlib.sha256(sample.read_bytes()).hexdigest() == before
    [note] = list((project / "data" / "notes").glob("*.md"))
    assert note.stem == folder.name and "## Key quotes" in note.read_text(encoding="utf-8")


def test_the_ask_commands_after_make_run(made_run, project):
    assert made_run.returncode == 0
    spent = run('.venv/bin/autorag ask "how much of the money have we spent so far"', project)
    assert spent.returncode == 0, spent.stderr
    # The packaged smollm2:135m is small: the answer quotes the budget part with its citation and page link.
    assert "Answer (quoted from the recordings)" in spent.stdout and "[sample-meeting.wav " in spent.stdout
    assert "we planned for this year" in spent.stdout and "Sources" in spent.stdout
    as_json = run('.venv/bin/autorag ask "how much of the money have we spent so far" --json', project)
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["mode"] == "extractive" and answer["citations"]
    page = (project / "data" / "viz" / "sample-meeting.wav.html").resolve().as_uri()
    assert all(c["link"] == f"{page}#t={int(c['start'])}" for c in answer["citations"])
    posters = run('.venv/bin/autorag ask "who will print the posters"', project)
    assert posters.returncode == 0 and "print the posters" in posters.stdout, posters.stderr


def test_the_commands_block(made_run, project):
    assert made_run.returncode == 0
    helped = run(".venv/bin/autorag --help", project)
    assert helped.returncode == 0 and "search" in helped.stdout and "ollama-serve" in helped.stdout
    again = run(".venv/bin/autorag run data/sample", project)
    flat = assert_legible(again)
    assert again.returncode == 0, flat[-3000:]
    assert "Model loads: whisper 1, diarizer 1" in flat
    bench = run(".venv/bin/python scripts/bench.py --help", project, timeout=300)
    assert bench.returncode == 0 and "--scale" in bench.stdout

    server = subprocess.Popen(
        shlex.split(".venv/bin/autorag ollama-serve --port 11434"),
        cwd=project,
        env=clean_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        version = wait_for(
            lambda: httpx.get("http://127.0.0.1:11434/api/version", timeout=2).json()["version"],
            "autorag ollama-serve answering on port 11434",
            120,
        )
        assert version.endswith("+autorag-localserve")
        models = run(".venv/bin/autorag models", project, timeout=300)
        flat = assert_legible(models)
        # The defaults ask for gemma4 and nomic-embed-text, which only a real Ollama has: the
        # command says which server answered and what is missing, and exits 1.
        assert models.returncode == 1 and "packaged autorag server" in flat and "gemma4:latest" in flat
        pulled = run(".venv/bin/autorag pull", project, timeout=300)
        flat = assert_legible(pulled)
        assert pulled.returncode == 1 and "gemma4" in flat and "Ollama" in flat
        tuned = run(".venv/bin/autorag tune --vram-gb 24", project, timeout=300)
        flat = assert_legible(tuned)
        assert tuned.returncode == 1 and "gemma4" in flat
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_make_dev_serves_the_ui(made_run, project):
    dev = subprocess.Popen(
        ["make", "dev"],
        cwd=project,
        env=clean_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:

        def serving() -> bool:
            assert dev.poll() is None, dev.stdout.read()[-3000:]  # make dev must not have exited
            answer = httpx.post("http://127.0.0.1:3000/graphql", json={"query": "{ version }"}, timeout=5)
            return answer.status_code == 200

        wait_for(serving, "make dev serving the UI on 127.0.0.1:3000", 240)
        runs = httpx.post(
            "http://127.0.0.1:3000/graphql",
            json={"query": "{ runsOrError { ... on Runs { results { runId } } } }"},
            timeout=30,
        ).json()
        assert runs["data"]["runsOrError"]["results"]  # the main job's runs, in the storage make dev opens
    finally:
        os.killpg(dev.pid, signal.SIGKILL)  # dagster dev started this way ignores SIGTERM
        dev.wait(timeout=30)


def test_naming_a_voice_in_three_commands(made_run, project):
    assert made_run.returncode == 0
    listed = run(".venv/bin/autorag speakers list", project)
    flat = assert_legible(listed)
    assert listed.returncode == 0 and "VOICE_0001" in flat and "VOICE_0002" in flat
    named = run('.venv/bin/autorag speakers name VOICE_0002 "Bob"', project)
    flat = assert_legible(named)
    assert named.returncode == 0, flat[-3000:]
    assert "VOICE_0002: Bob" in (project / "data" / "sample" / "speakers.yaml").read_text()
    bob = run('.venv/bin/autorag search "festival" --speaker Bob --mode text --json', project)
    assert bob.returncode == 0, bob.stderr
    hits = json.loads(bob.stdout)
    assert hits and all("Bob" in hit["speakers"] for hit in hits)
