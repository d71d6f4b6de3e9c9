"""What the packaged server exposes: a warning for any bind beyond loopback, and an event log of bounded size."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.localserve import server
from autorag_dagster.localserve.events import MAX_EVENTS, EventLog


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_binds_are_quiet(host):
    assert server.is_loopback(host)
    assert server.exposure_warning(host, 11434) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.lan", ""])
def test_other_binds_are_warned_about(host):
    assert not server.is_loopback(host)
    warning = server.exposure_warning(host, 11500)
    assert warning.startswith(f"WARNING: listening on {host}:11500, not on loopback")
    assert "no authentication" in warning and "--host 127.0.0.1" in warning


def run_cli(monkeypatch, tmp_path, *args: str) -> tuple[str, dict]:
    """``autorag ollama-serve`` up to the point where uvicorn would start listening."""
    bound: dict = {}
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: bound.update(options))
    result = CliRunner().invoke(app, ["ollama-serve", "--models-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    return result.stderr, bound


def test_ollama_serve_warns_on_a_public_host_and_not_on_the_default(monkeypatch, tmp_path):
    stderr, bound = run_cli(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "11500")
    assert (bound["host"], bound["port"]) == ("0.0.0.0", 11500)
    assert "WARNING: listening on 0.0.0.0:11500, not on loopback" in stderr

    stderr, bound = run_cli(monkeypatch, tmp_path)
    assert bound["host"] == "127.0.0.1"
    assert "WARNING" not in stderr


def test_the_event_log_keeps_only_the_newest_events():
    assert MAX_EVENTS == 10_000
    log = EventLog(max_events=5)
    for n in range(12):
        log.record("request_start", "m", n=n)
    events = log.select()
    assert [e["n"] for e in events] == [7, 8, 9, 10, 11]
    assert [e["seq"] for e in events] == [8, 9, 10, 11, 12]
    assert [e["n"] for e in log.select(since=10)] == [10, 11]
    log.clear()
    log.record("pull", "m")
    assert [e["seq"] for e in log.select()] == [13]


def test_the_server_default_log_is_bounded():
    log = EventLog()
    for _ in range(MAX_EVENTS + 50):
        log.record("request_end", "m")
    events = log.select()
    assert len(events) == MAX_EVENTS
    assert events[0]["seq"] == 51 and events[-1]["seq"] == MAX_EVENTS + 50
