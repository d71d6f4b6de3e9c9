"""/api/pull from the local catalogue: the streamed lines, unknown names, and persistence in the models directory."""

from __future__ import annotations

import re

import httpx
import ollama
import pytest

from autorag_dagster.localserve import LocalServer
from tests.support.localserve_http import SMALL, chat_body, ndjson


def test_pull_streams_ollamas_lines_in_order_then_the_model_is_usable(local_ollama, http):
    assert http.post("/api/chat", json=chat_body(SMALL)).status_code == 404
    lines = ndjson(http.post("/api/pull", json={"model": SMALL}))
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = lines[1:-3]
    assert layers and all(re.fullmatch(r"pulling [0-9a-f]{12}", line["status"]) for line in layers)
    for line in layers:
        assert line["digest"][7:19] == line["status"].removeprefix("pulling ")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", line["digest"])
    finished = [line for line in layers if line.get("completed") == line["total"]]
    assert len(finished) == len({line["digest"] for line in layers})  # every layer completes
    assert sum(line["total"] for line in finished) == next(
        m["size"] for m in http.get("/api/tags").json()["models"] if m["name"] == "deterministic-tiny:latest"
    )
    assert http.post("/api/chat", json={**chat_body(SMALL)}).status_code == 200
    assert local_ollama.events(kind="pull", model="deterministic-tiny:latest")[-1]["status"] == "success"


def test_pull_of_an_unknown_model_streams_ollamas_error(local_ollama, http):
    lines = ndjson(http.post("/api/pull", json={"model": "no-such-model"}))
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    refused = http.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert (refused.status_code, refused.json()) == (500, {"error": "pull model manifest: file does not exist"})
    assert [e["status"] for e in local_ollama.events(kind="pull", model="no-such-model:latest")] == ["error", "error"]


def test_pull_without_streaming_answers_success(http):
    response = http.post("/api/pull", json={"model": "deterministic-tiny:latest", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success"})


def test_pull_with_an_invalid_name_is_a_400(http):
    response = http.post("/api/pull", json={"model": "bad name!"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid model name"})


def test_ollama_client_pull_progress_and_streamed_error(local_ollama_client):
    progress = list(local_ollama_client.pull(SMALL, stream=True))
    assert progress[-1].status == "success"
    assert any(p.completed and p.completed == p.total for p in progress)
    with pytest.raises(ollama.ResponseError) as failed:
        list(local_ollama_client.pull("no-such-model", stream=True))
    assert failed.value.error == "pull model manifest: file does not exist"


def test_pulled_models_survive_a_restart_and_others_stay_missing(tmp_path):
    with LocalServer(models_dir=tmp_path, pulled=[], deterministic=True) as first:
        assert httpx.get(f"{first.url}/api/tags").json() == {"models": []}
        httpx.post(f"{first.url}/api/pull", json={"model": "deterministic-embed", "stream": False}).raise_for_status()
    with LocalServer(models_dir=tmp_path, deterministic=True) as second:
        names = [m["name"] for m in httpx.get(f"{second.url}/api/tags").json()["models"]]
        assert names == ["deterministic-embed:latest"]
        missing = httpx.post(f"{second.url}/api/chat", json=chat_body("deterministic-llm"))
        assert (missing.status_code, missing.json()) == (404, {"error": "model 'deterministic-llm' not found"})
    with LocalServer(models_dir=tmp_path) as plain:  # without the option the test model is not offered at all
        assert httpx.get(f"{plain.url}/api/tags").json() == {"models": []}
