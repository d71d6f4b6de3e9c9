"""Test-facing extensions (scripted answers, the event log over HTTP), configuration, and the server as a process."""

from __future__ import annotations

import math
from dataclasses import replace

import ollama
import pytest

from autorag_dagster.localserve import ConfigError, ServerConfig
from autorag_dagster.localserve.catalogue import DETERMINISTIC_TINY, PACKAGED_CATALOGUE
from tests.support.localserve_http import chat_body
from tests.support.models import LLM


def content(http, text: str, **extra) -> str:
    response = http.post("/api/chat", json={**chat_body(text=text), **extra})
    assert response.status_code == 200, response.text
    return response.json()["message"]["content"]


def test_scripted_answers_over_http_match_in_order_and_are_consumed(local_ollama, http):
    rules = [
        {"match": "boundaries", "content": "not json at all", "times": 2},
        {"match": "boundaries", "content": '{"cuts": []}'},
        {"match": "TopicTitle", "content": "{broken"},
    ]
    assert http.post("/_autorag/script", json={"rules": rules}).json() == {"pending": 3}
    answers = [content(http, "propose boundaries please") for _ in range(4)]
    assert answers == ["not json at all", "not json at all", '{"cuts": []}', '{"cuts": []}']
    schema = {"title": "TopicTitle", "type": "object", "properties": {"title": {"type": "string"}}}
    assert content(http, "name this topic", format=schema) == "{broken"
    assert content(http, "unrelated question") != "{broken"
    ends = local_ollama.events(kind="request_end")
    assert [e["scripted"] for e in ends] == [True] * 5 + [False]
    assert http.delete("/_autorag/script").status_code == 200
    assert content(http, "propose boundaries please") != '{"cuts": []}'


def test_scripted_answers_from_python_and_bad_rules(local_ollama, http):
    local_ollama.script([{"match": "ping", "content": "pong", "times": 1}])
    assert content(http, "ping?") == "pong"
    assert content(http, "ping?") != "pong"
    bad = http.post("/_autorag/script", json={"rules": [{"match": "x", "content": "y", "times": 0}]})
    assert bad.status_code == 400 and "'times' must be a positive integer" in bad.json()["error"]
    assert http.post("/_autorag/script", json={"nope": 1}).status_code == 400


def test_event_log_over_http(local_ollama, http):
    http.post("/api/chat", json=chat_body()).raise_for_status()
    events = http.get("/_autorag/events").json()
    assert [e["kind"] for e in events] == ["pull", "pull", "load", "request_start", "request_end"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(isinstance(e["t"], float) and e["t"] >= 0 for e in events)
    start = events[3]
    assert start["model"] == LLM and start["endpoint"] == "chat" and start["in_flight"] == 1
    assert (start["think"], start["format"], start["keep_alive"]) == (False, False, None)
    assert http.get("/_autorag/events", params={"since": events[2]["seq"]}).json() == events[3:]
    assert http.get("/_autorag/events", params={"kind": "load"}).json() == [events[2]]
    http.delete("/_autorag/events").raise_for_status()
    assert local_ollama.events() == []


def test_configuration_reads_ollamas_environment():
    env = {
        "OLLAMA_NUM_PARALLEL": "3",
        "OLLAMA_MAX_LOADED_MODELS": "0",
        "OLLAMA_KEEP_ALIVE": "10m",
        "OLLAMA_MAX_QUEUE": "7",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "AUTORAG_LOCALSERVE_DELAY": "0.25",
        "OLLAMA_MODELS": "/tmp/somewhere",
    }
    config = ServerConfig.from_env(env)
    assert (config.num_parallel, config.max_loaded_models, config.keep_alive, config.max_queue) == (3, 3, 600.0, 7)
    assert (config.kv_cache_type, config.delay, str(config.models_dir)) == ("q8_0", 0.25, "/tmp/somewhere")
    assert ServerConfig.from_env(env, num_parallel=8, keep_alive=-1).num_parallel == 8
    assert math.isinf(ServerConfig.from_env({"OLLAMA_KEEP_ALIVE": "-1"}).keep_alive)
    assert ServerConfig.from_env({"OLLAMA_KEEP_ALIVE": "300"}).keep_alive == 300.0  # the env form allows bare seconds


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OLLAMA_NUM_PARALLEL": "many"}, "OLLAMA_NUM_PARALLEL"),
        ({"OLLAMA_NUM_PARALLEL": "0"}, "OLLAMA_NUM_PARALLEL"),
        ({"OLLAMA_KEEP_ALIVE": "soon"}, "OLLAMA_KEEP_ALIVE"),
        ({"OLLAMA_KV_CACHE_TYPE": "q2"}, "OLLAMA_KV_CACHE_TYPE"),
        ({"AUTORAG_LOCALSERVE_VRAM": "lots"}, "AUTORAG_LOCALSERVE_VRAM"),
    ],
)
def test_invalid_configuration_names_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        ServerConfig.from_env(env)


def test_unknown_models_backends_and_settings_are_refused():
    with pytest.raises(
        ConfigError, match=r"cannot pre-pull \['llama9'\]: this server offers only the models it really"
    ):
        ServerConfig.from_env({}, pulled=["llama9"])
    magic = replace(DETERMINISTIC_TINY, name="deterministic-magic:latest", backend="magic")
    with pytest.raises(ConfigError, match="unknown backend"):
        ServerConfig.from_env({}, catalogue=PACKAGED_CATALOGUE.with_specs(magic))
    with pytest.raises(TypeError, match="num_paralel"):
        ServerConfig.from_env({}, num_paralel=8)


def test_the_server_as_a_separate_process(local_ollama_process):
    client = ollama.Client(host=local_ollama_process.url, timeout=30)
    assert {m.model for m in client.list().models} == {LLM, "nomic-embed-text:latest"}
    local_ollama_process.script([{"match": "hello", "content": "scripted hello"}])
    answer = client.chat(model="gemma4", messages=[{"role": "user", "content": "hello"}], think=False)
    assert answer.message.content == "scripted hello"
    assert [e["kind"] for e in local_ollama_process.events(kind="load")] == ["load"]
    assert client.ps().models[0].context_length == 4096
