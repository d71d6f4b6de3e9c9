"""The server against spec/ollama-api.md: routes, response shapes, status codes and error texts."""

from __future__ import annotations

import re
from datetime import datetime

import ollama
import pytest

from tests.support.localserve_http import SMALL, chat_body, ndjson
from tests.support.models import EMBED, LLM

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def test_root_version_and_unknown_routes(http):
    assert http.get("/").text == "Ollama is running"
    head = http.head("/")
    assert head.status_code == 200 and head.text == ""
    assert http.get("/api/version").json() == {"version": "0.32.15+autorag-localserve"}
    missing = http.get("/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    assert http.get("/api/chat").status_code == 405


def test_tags_lists_pulled_models_with_details(http):
    models = http.get("/api/tags").json()["models"]
    assert {m["name"] for m in models} == {LLM, "nomic-embed-text:latest"}
    for model in models:
        assert model["model"] == model["name"]
        assert re.fullmatch(r"[0-9a-f]{64}", model["digest"])
        assert RFC3339.match(model["modified_at"])
        assert set(model["details"]) >= {"format", "family", "families", "parameter_size", "quantization_level"}
    gemma = next(m for m in models if m["name"] == LLM)
    assert 9.5e9 < gemma["size"] < 9.7e9


def test_show_reports_model_info_and_capabilities(local_ollama_client):
    shown = local_ollama_client.show("gemma4")
    arch = shown.modelinfo["general.architecture"]
    for key in ("block_count", "context_length", "embedding_length", "attention.head_count_kv", "attention.key_length"):
        assert isinstance(shown.modelinfo[f"{arch}.{key}"], int)
    assert shown.capabilities == ["completion", "thinking"]
    embed = local_ollama_client.show(EMBED)
    assert embed.capabilities == ["embedding"]
    assert embed.modelinfo[f"{embed.modelinfo['general.architecture']}.embedding_length"] == 768


@pytest.mark.parametrize("name", ["gemma4", "gemma4:latest", "GEMMA4", "library/gemma4:latest"])
def test_x_and_x_latest_are_the_same_model(http, name):
    response = http.post("/api/chat", json=chat_body(name))
    assert response.status_code == 200
    assert response.json()["model"] == name  # echoed as requested
    assert [m["name"] for m in http.get("/api/ps").json()["models"]] == [LLM]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/chat", chat_body("nope"), 404, "model 'nope' not found"),
        ("/api/chat", chat_body(SMALL), 404, "model 'deterministic-tiny' not found"),  # in the catalogue, not pulled
        ("/api/generate", {"model": "nope", "prompt": "hi"}, 404, "model 'nope' not found"),
        ("/api/embed", {"model": "nope", "input": "hi"}, 404, 'model "nope" not found, try pulling it first'),
        ("/api/show", {"model": "nope"}, 404, "model 'nope' not found"),
        ("/api/chat", chat_body(EMBED), 400, '"nomic-embed-text" does not support chat'),
        (
            "/api/generate",
            {"model": EMBED, "prompt": "hi", "think": False},
            400,
            '"nomic-embed-text" does not support generate',
        ),
        ("/api/chat", chat_body(""), 400, "model is required"),
        ("/api/show", {}, 400, "model is required"),
        (
            "/api/chat",
            {**chat_body(), "think": "extreme"},
            400,
            'invalid think value: "extreme" (must be "high", "medium", "low", true, or false)',
        ),
        (
            "/api/chat",
            {**chat_body(), "stream": "yes"},
            400,
            "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool",
        ),
        ("/api/chat", {**chat_body(), "options": {"num_ctx": "big"}}, 500, 'option "num_ctx" must be of type integer'),
        (
            "/api/chat",
            {**chat_body(), "format": "xml"},
            500,
            'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object',
        ),
        ("/api/embed", {"model": EMBED, "input": [1, 2]}, 400, "invalid input type"),
    ],
)
def test_error_statuses_and_bodies(http, path, body, status, error):
    response = http.post(path, json=body)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_missing_body_is_a_400(http):
    response = http.post("/api/chat", content=b"")
    assert (response.status_code, response.json()) == (400, {"error": "missing request body"})


def test_think_true_on_a_model_without_thinking_is_a_400(local_ollama, http):
    local_ollama.pull(SMALL)
    response = http.post("/api/chat", json={**chat_body(SMALL), "think": True})
    assert (response.status_code, response.json()) == (400, {"error": '"deterministic-tiny" does not support thinking'})
    assert http.post("/api/chat", json={**chat_body(SMALL), "think": False}).status_code == 200


def test_invalid_format_streamed_is_still_an_error_status(http):
    """An error before any content is sent with its status even when streaming."""
    response = http.post("/api/chat", json={**chat_body(), "stream": True, "format": 42})
    assert response.status_code == 500
    assert response.json()["error"].startswith("invalid format")


@pytest.mark.parametrize("keep_alive", ["5m", 300, "0", 0, -1, "1h30m", "-1m", 2.5])
def test_keep_alive_forms_are_accepted(http, keep_alive):
    response = http.post("/api/chat", json={**chat_body(), "keep_alive": keep_alive})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("keep_alive", "error"),
    [
        ("3600", 'time: missing unit in duration "3600"'),
        ("soon", 'time: invalid duration "soon"'),
        ("5 minutes", 'time: unknown unit " minutes" in duration "5 minutes"'),
        (True, "Unsupported type: 'bool'"),
    ],
)
def test_bad_keep_alive_is_a_400(http, keep_alive, error):
    response = http.post("/api/chat", json={**chat_body(), "keep_alive": keep_alive})
    assert (response.status_code, response.json()) == (400, {"error": error})


def test_chat_streams_ndjson_by_default(http):
    body = {"model": LLM, "messages": [{"role": "user", "content": "Tell me about rivers and lakes"}], "think": False}
    lines = ndjson(http.post("/api/chat", json=body))
    *chunks, final = lines
    assert chunks and all(c["done"] is False and c["message"]["role"] == "assistant" for c in chunks)
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert isinstance(final[key], int) and final[key] >= 0, key
    assert final["total_duration"] >= final["load_duration"]
    assert RFC3339.match(final["created_at"])
    streamed = "".join(c["message"]["content"] for c in chunks)
    whole = http.post("/api/chat", json={**body, "stream": False}).json()
    assert streamed == whole["message"]["content"]
    assert whole["prompt_eval_count"] == 6 and whole["eval_count"] == len(streamed.split())


def test_generate_streams_and_answers(http):
    lines = ndjson(http.post("/api/generate", json={"model": LLM, "prompt": "Name three colours", "think": False}))
    assert lines[-1]["done"] is True and lines[-1]["response"] == "" and isinstance(lines[-1]["context"], list)
    answer = http.post(
        "/api/generate", json={"model": LLM, "prompt": "Name three colours", "think": False, "stream": False}
    )
    assert answer.json()["response"] == "".join(line["response"] for line in lines)
    assert datetime.fromisoformat(answer.json()["created_at"].replace("Z", "+00:00"))


def test_thinking_models_think_unless_told_not_to(http):
    body = {"model": LLM, "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": False}
    assert http.post("/api/chat", json=body).json()["message"]["thinking"]
    assert "thinking" not in http.post("/api/chat", json={**body, "think": False}).json()["message"]
    streamed = ndjson(http.post("/api/chat", json={**body, "stream": True}))
    assert any(line["message"].get("thinking") for line in streamed)


def test_ollama_client_errors_carry_status_and_text(local_ollama_client):
    with pytest.raises(ollama.ResponseError) as missing:
        local_ollama_client.chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert (missing.value.status_code, missing.value.error) == (404, "model 'nope' not found")
    with pytest.raises(ollama.ResponseError) as embed_missing:
        local_ollama_client.embed(model="all-minilm", input="hi")
    assert embed_missing.value.status_code == 404
    assert embed_missing.value.error == 'model "all-minilm" not found, try pulling it first'


def test_unknown_options_are_ignored_and_sampling_options_do_not_reload(local_ollama, http):
    for options in ({"num_ctx": 2048}, {"num_ctx": 2048, "temperature": 0.7, "seed": 3, "bogus": 1}):
        assert http.post("/api/chat", json={**chat_body(), "options": options}).status_code == 200
    assert len(local_ollama.events(kind="load")) == 1
    assert local_ollama.events(kind="reload") == []


def test_num_predict_cuts_the_answer_with_done_reason_length(http):
    body = {**chat_body(text="Describe the ocean waves beach sand and sun"), "options": {"num_predict": 3}}
    answer = http.post("/api/chat", json=body).json()
    assert answer["done_reason"] == "length"
    assert answer["eval_count"] == 3 and len(answer["message"]["content"].split()) == 3


def test_delete_removes_a_pulled_model(http):
    assert http.request("DELETE", "/api/delete", json={"model": EMBED}).status_code == 200
    assert EMBED + ":latest" not in {m["name"] for m in http.get("/api/tags").json()["models"]}
    again = http.request("DELETE", "/api/delete", json={"model": EMBED})
    assert (again.status_code, again.json()) == (404, {"error": "model 'nomic-embed-text' not found"})
