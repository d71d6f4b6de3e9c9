"""The server never passes a stand-in off as a real model: what it offers, and how it names itself."""

from __future__ import annotations

import re
import socket
from dataclasses import replace

import httpx
import ollama
import pytest
from packaging.version import Version

from autorag_dagster.localserve import ConfigError, LocalServer, ServerConfig
from autorag_dagster.localserve.catalogue import DETERMINISTIC_LLM, PACKAGED_CATALOGUE
from autorag_dagster.localserve.server import SERVER_VERSION
from autorag_dagster.ollama import OllamaClient, check_models
from autorag_dagster.ollama.identity import identify_server, is_packaged_server, is_packaged_version
from tests.support.localserve_http import chat_body, ndjson
from tests.support.models import DETERMINISTIC_EMBED, LLM
from tests.support.models import DETERMINISTIC_LLM as DLLM

# semver.org's regular expression: the version must stay a valid semantic version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def plain(tmp_path):
    """The server as a user starts it: no option."""
    with LocalServer(models_dir=tmp_path) as server:
        yield server


def test_by_default_only_the_models_it_really_runs_are_offered(plain):
    assert list(ServerConfig.from_env({}).offered) == ["smollm2:135m", "all-minilm:latest"]
    with httpx.Client(base_url=plain.url, timeout=120) as http:
        for name in ("gemma4", "nomic-embed-text", "deterministic-llm"):
            lines = ndjson(http.post("/api/pull", json={"model": name}))
            assert lines[-1] == {"error": "pull model manifest: file does not exist"}, name
        missing = http.post("/api/chat", json=chat_body("gemma4"))
        assert (missing.status_code, missing.json()) == (404, {"error": "model 'gemma4' not found"})
        http.post("/api/pull", json={"model": "smollm2:135m", "stream": False}).raise_for_status()
        [listed] = http.get("/api/tags").json()["models"]
        assert (listed["name"], listed["details"]["backend"]) == ("smollm2:135m", "llama_cpp")


def test_real_names_are_refused_without_the_test_opt_in(tmp_path):
    with pytest.raises(ConfigError, match=r"gemma4.*offers only the models it really runs.*real Ollama"):
        ServerConfig.from_env({}, pulled=["gemma4"])
    with pytest.raises(ConfigError, match=r"cannot pre-pull \['gemma4'\].*set stand_in_names"):
        ServerConfig.from_env({}, pulled=["gemma4"], deterministic=True)
    with pytest.raises(ConfigError, match="stand_in_names needs deterministic"):
        ServerConfig.from_env({}, stand_in_names=True)
    # a catalogue that would put the deterministic backend behind any other name is refused too
    fake = replace(DETERMINISTIC_LLM, name="llama3.2:1b")
    with pytest.raises(ConfigError, match=r"deterministic test backend would answer as llama3.2:1b: refused"):
        ServerConfig.from_env({}, catalogue=PACKAGED_CATALOGUE.with_specs(fake))


def test_the_deterministic_models_answer_under_their_own_names_with_the_option(tmp_path):
    with LocalServer(models_dir=tmp_path, deterministic=True, pulled=[DLLM, DETERMINISTIC_EMBED]) as server:
        client = ollama.Client(host=server.url, timeout=30)
        answer = client.chat(DLLM, [{"role": "user", "content": "rivers and lakes"}], think=False)
        assert answer.message.content
        assert len(client.embed(DETERMINISTIC_EMBED, "rivers").embeddings[0]) == 768
        details = {m["name"]: m["details"] for m in httpx.get(f"{server.url}/api/tags").json()["models"]}
        assert {name: d["backend"] for name, d in details.items()} == {
            DLLM: "deterministic",
            DETERMINISTIC_EMBED: "deterministic",
        }
        assert {d["family"] for d in details.values()} == {"deterministic"}
        row = next(r for r in httpx.get(f"{server.url}/api/ps").json()["models"] if r["name"] == DLLM)
        # nothing is held: the sizes are computed from the model's shape and say so
        assert row["memory"]["source"] == "computed" and row["memory"]["device"] == "simulated GPU"
        assert row["size"] == row["memory"]["weights_bytes_computed"] + row["memory"]["kv_cache_bytes_computed"]
        assert httpx.post(f"{server.url}/api/chat", json=chat_body(LLM)).status_code == 404


def test_stand_in_names_answer_only_when_a_test_asks_and_still_say_their_backend(local_ollama):
    shown = httpx.post(f"{local_ollama.url}/api/show", json={"model": LLM}).json()
    assert shown["details"]["backend"] == "deterministic"
    assert local_ollama.config.stand_in_names  # the shared fixtures opt in on purpose


def test_version_marks_the_server_and_still_parses(plain):
    version = httpx.get(f"{plain.url}/api/version").json()["version"]
    assert version == SERVER_VERSION == "0.32.15+autorag-localserve"
    assert SEMVER.match(version)  # build metadata: same precedence as 0.32.15
    assert Version(version).base_version == "0.32.15" and Version(version) >= Version("0.32")
    assert is_packaged_version(version) and not is_packaged_version("0.32.15")
    assert not is_packaged_version("0.32.15+autorag") and not is_packaged_version(None)
    client = ollama.Client(host=plain.url, timeout=30)  # the official client works against it as before
    assert client.list().models == [] and client.ps().models == []


def test_identify_server_reports_the_packaged_server_and_each_backend(local_ollama, plain, closed_port_url):
    identity = identify_server(local_ollama.url)
    assert identity.packaged and identity.version == SERVER_VERSION
    assert identity.backend("gemma4") == identity.backend("nomic-embed-text") == "deterministic"
    assert "packaged autorag server (not Ollama" in identity.description
    assert is_packaged_server(plain.url) and identify_server(plain.url).backends == {}
    nothing = identify_server(closed_port_url, timeout=1)
    assert (nothing.version, nothing.packaged) == (None, False)
    assert not is_packaged_server(closed_port_url, timeout=1)


def test_readiness_says_when_it_talks_to_the_packaged_server(local_ollama_factory):
    server = local_ollama_factory(pulled=["smollm2:135m", "nomic-embed-text"])
    with OllamaClient(server.url, llm_model="smollm2:135m", embed_model="all-minilm", timeout=30) as client:
        ready = check_models(client, ["smollm2:135m", "nomic-embed-text"])
        assert ready.ready and ready.packaged
        assert ready.message.startswith("All required models are pulled on the packaged autorag server (not Ollama")
        assert "smollm2:135m (llama.cpp on the CPU)" in ready.message
        assert "nomic-embed-text (deterministic test backend, not a language model)" in ready.message
        missing = check_models(client, ["smollm2:135m", "all-minilm"])
        assert not missing.ready and missing.missing == ["all-minilm"]
        assert (
            "on the packaged autorag server (not Ollama" in missing.message
            and "autorag pull all-minilm" in missing.message
        )


def test_test_routes_exist_only_for_tests(plain, local_ollama):
    with httpx.Client(base_url=plain.url, timeout=10) as http:
        assert http.get("/_autorag/events").status_code == 404
        assert http.delete("/_autorag/events").status_code == 404
        assert http.post("/_autorag/script", json={"rules": []}).status_code == 404
    assert httpx.get(f"{local_ollama.url}/_autorag/events").status_code == 200  # the fixtures turn them on


def test_the_spawned_server_names_itself_and_each_model_with_its_backend(local_ollama_process):
    output = local_ollama_process.output()
    assert f"autorag packaged Ollama-compatible server {SERVER_VERSION} (not Ollama)" in output
    assert "smollm2:135m: llama.cpp on the CPU [backend llama_cpp]" in output
    assert "all-minilm:latest: sentence-transformers on the CPU [backend sentence_transformers]" in output
    assert (
        "deterministic-llm:latest: deterministic test backend, not a language model [backend deterministic]" in output
    )
    gemma = next(line for line in output.splitlines() if line.strip().startswith("gemma4:latest:"))
    assert "[backend deterministic], a stand-in for tests, NOT gemma4:latest; pulled" in gemma
    assert "test routes on" in output


def test_ollama_serve_refuses_a_real_name_it_cannot_run(tmp_path):
    from typer.testing import CliRunner

    from autorag_dagster.cli import app

    result = CliRunner().invoke(app, ["ollama-serve", "--models-dir", str(tmp_path), "--pull", "gemma4"])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert (
        "cannot pre-pull ['gemma4']" in flat and "gemma4:latest, nomic-embed-text:latest run on a real Ollama" in flat
    )
