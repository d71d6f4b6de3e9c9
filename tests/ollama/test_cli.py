"""`autorag pull` and `autorag models` against the local server."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.settings import get_settings
from tests.support.models import EMBED, LLM
from tests.support.ollama_clients import make_client


@pytest.fixture
def autorag(monkeypatch, tmp_path):
    """Run the CLI with AUTORAG_OLLAMA_BASE_URL pointing at a given server."""
    monkeypatch.chdir(tmp_path)  # no stray .env

    def run(url: str, *args: str):
        monkeypatch.setenv("AUTORAG_OLLAMA_BASE_URL", url)
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield run
    get_settings.cache_clear()


def test_pull_shows_progress_then_models_lists_everything_pulled(start_server, autorag):
    server = start_server(pulled=[LLM])

    missing = autorag(server.url, "models")
    assert missing.exit_code == 1
    assert "nomic-embed-text" in missing.output and "autorag pull nomic-embed-text" in missing.output

    pulled = autorag(server.url, "pull", EMBED)
    assert pulled.exit_code == 0, pulled.output
    assert "nomic-embed-text: pulling manifest" in pulled.output and "nomic-embed-text: success" in pulled.output

    with make_client(server.url) as client:
        client.warm()
    ready = autorag(server.url, "models")
    assert ready.exit_code == 0, ready.output
    assert "NO" not in ready.output and "gemma4:latest" in ready.output and "8192" in ready.output


def test_pull_of_an_unknown_model_exits_non_zero_with_the_reason(server, autorag):
    result = autorag(server.url, "pull", "no-such-model:7b")

    assert result.exit_code == 1
    assert "Could not pull 'no-such-model:7b'" in result.output and "Traceback" not in result.output


def test_commands_name_the_url_when_nothing_answers(closed_port_url, autorag):
    for command in ("models", "pull"):
        result = autorag(closed_port_url, command)
        assert result.exit_code == 1
        assert closed_port_url in result.output and "autorag ollama-serve" in result.output


def test_models_says_when_it_talks_to_the_packaged_server_and_names_each_backend(local_ollama_factory, autorag):
    server = local_ollama_factory(pulled=[LLM, EMBED])
    with make_client(server.url) as client:
        client.warm()
    result = autorag(server.url, "models")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "packaged autorag server (not Ollama; 0.32.15+autorag-localserve)" in flat
    assert "deterministic test backend" in flat and "backend" in flat
