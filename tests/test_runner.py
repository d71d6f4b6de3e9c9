"""The embedded Dagster runner leaves the process environment as it found it."""

from __future__ import annotations

import os

from autorag_dagster.runner import EmbeddedDagster, dagster_home
from autorag_dagster.settings import load_settings


def test_dagster_home_is_set_only_inside_the_block(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", "/somewhere/else")
    with dagster_home(tmp_path / "home") as home:
        assert os.environ["DAGSTER_HOME"] == str(home) and (home / "dagster.yaml").exists()
    assert os.environ["DAGSTER_HOME"] == "/somewhere/else"
    monkeypatch.delenv("DAGSTER_HOME")
    with dagster_home(tmp_path / "home"):
        pass
    assert "DAGSTER_HOME" not in os.environ


def test_an_embedded_instance_registers_files_once_and_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings(audio_dir=tmp_path, data_dir=tmp_path / "data")
    with EmbeddedDagster(settings, home=settings.layout.dagster_home) as dagster:
        assert dagster.register(["b.wav", "a.wav"]) == ["b.wav", "a.wav"]
        assert dagster.register(["a.wav", "c.wav"]) == ["c.wav"]
    assert "DAGSTER_HOME" not in os.environ
    with EmbeddedDagster(settings, home=settings.layout.dagster_home) as dagster:  # the storage persists
        assert dagster.register(["a.wav"]) == []
