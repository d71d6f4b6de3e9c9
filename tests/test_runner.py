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


def test_a_run_whose_process_died_is_failed_and_its_gpu_slot_freed(tmp_path, monkeypatch):
    import socket

    from dagster import DagsterRun, DagsterRunStatus

    from autorag_dagster.runner import HOST_TAG, PID_TAG

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings(audio_dir=tmp_path, data_dir=tmp_path / "data")
    home = settings.layout.dagster_home
    dead = 2**22 + 12345  # above pid_max on this kind of machine: no such process
    with EmbeddedDagster(settings, home=home) as dagster:
        storage = dagster.instance.event_log_storage
        storage.set_concurrency_slots("gpu", 1)
        for run_id, pid in (("a" * 32, dead), ("b" * 32, os.getpid())):
            dagster.instance.add_run(
                DagsterRun(
                    job_name="process_audio",
                    run_id=run_id,
                    status=DagsterRunStatus.STARTED,
                    tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()},
                )
            )
        assert storage.claim_concurrency_slot("gpu", "a" * 32, "transcript").is_claimed
        assert not storage.claim_concurrency_slot("gpu", "c" * 32, "transcript").is_claimed  # it would wait

    with EmbeddedDagster(settings, home=home) as dagster:
        assert dagster.abandoned == ["a" * 32]  # the live process's run is left alone
        runs = {r.run_id: r.status for r in dagster.instance.get_runs()}
        assert runs["a" * 32] == DagsterRunStatus.FAILURE and runs["b" * 32] == DagsterRunStatus.STARTED
        assert dagster.instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0
