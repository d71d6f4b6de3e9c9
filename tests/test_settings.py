"""Settings: AUTORAG_* variables and .env, with errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autorag_dagster.settings import SettingsError, load_settings


def test_defaults_match_the_documented_ones(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings()
    assert settings.ollama_base_url == "http://localhost:11434"
    assert settings.llm_model == "gemma4:latest" and settings.embed_model == "nomic-embed-text"
    assert (settings.num_ctx, settings.keep_alive, settings.max_concurrency) == (8192, "5m", 8)


def test_environment_and_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AUTORAG_NUM_CTX=4096\nAUTORAG_LLM_MODEL=qwen3:8b\n")
    monkeypatch.setenv("AUTORAG_LLM_MODEL", "llama3.1:8b")  # the environment wins over .env
    settings = load_settings()
    assert settings.num_ctx == 4096 and settings.llm_model == "llama3.1:8b"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AUTORAG_NUM_CTX", "lots", "valid integer"),
        ("AUTORAG_MAX_CONCURRENCY", "0", "greater than or equal to 1"),
        ("AUTORAG_KEEP_ALIVE", "3600", "has no unit"),
        ("AUTORAG_KEEP_ALIVE", "soon", "not a duration"),
        ("AUTORAG_OLLAMA_BASE_URL", "localhost:11434", "http(s) URL"),
        ("AUTORAG_DIARIZER", "magic", "resemblyzer"),
    ],
)
def test_an_invalid_value_names_the_variable(monkeypatch, tmp_path, variable, value, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value) and expected in str(error.value)


def test_keep_alive_forms_ollama_accepts(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for value, expected in (("5m", "5m"), ("0", "0"), ("-1", "-1s"), ("1h30m", "1h30m")):
        monkeypatch.setenv("AUTORAG_KEEP_ALIVE", value)
        assert load_settings().keep_alive == expected


def test_the_cli_stops_at_start_up_naming_the_variable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AUTORAG_NUM_CTX": "big", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "autorag_dagster.cli", "models"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "AUTORAG_NUM_CTX" in result.stderr and "Traceback" not in result.stderr


def test_dagster_validates_the_code_location(tmp_path):
    """What `dagster dev` loads: workspace.yaml -> autorag_dagster.definitions."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(root / "workspace.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
