"""Ollama's scheduler semantics, read back from /api/ps and the event log."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx

from autorag_dagster.localserve import max_in_flight
from tests.support.localserve_http import SMALL, chat_body, post_concurrently, wait_for
from tests.support.models import EMBED, LLM

BUSY = "server busy, please try again.  maximum pending requests exceeded"
EMBED_NAME = "nomic-embed-text:latest"


def loaded(http: httpx.Client) -> list[dict]:
    return http.get("/api/ps").json()["models"]


def expires_in(row: dict) -> timedelta:
    return datetime.fromisoformat(row["expires_at"].replace("Z", "+00:00")) - datetime.now(UTC)


def in_background(target, *args, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs)
    thread.start()
    return thread


def test_load_only_and_unload_only_requests(local_ollama, http):
    loaded_answer = http.post("/api/chat", json={"model": LLM, "messages": []}).json()
    assert loaded_answer["done"] is True and loaded_answer["done_reason"] == "load"
    assert "eval_count" not in loaded_answer
    assert [(m["name"], m["context_length"]) for m in loaded(http)] == [(LLM, 4096)]

    unload = http.post("/api/generate", json={"model": "gemma4", "prompt": "", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and unload["response"] == ""
    assert loaded(http) == []
    assert [(e["kind"], e.get("cause")) for e in local_ollama.events() if e["kind"] in ("load", "unload")] == [
        ("load", None),
        ("unload", "keep_alive_0"),
    ]
    again = http.post("/api/chat", json={"model": LLM, "messages": [], "keep_alive": 0})
    assert again.json()["done_reason"] == "unload"  # a no-op when not loaded
    missing = http.post("/api/chat", json={"model": "nope", "messages": [], "keep_alive": 0})
    assert missing.status_code == 404
    assert local_ollama.events(kind="request_start") == []  # load/unload requests do no work


def test_one_num_ctx_gives_one_load_and_no_reload(local_ollama):
    bodies = [{**chat_body(text=f"question {i}"), "options": {"num_ctx": 8192}} for i in range(10)]
    assert {r.status_code for r in post_concurrently(local_ollama.url, "/api/chat", bodies)} == {200}
    assert len(local_ollama.events(kind="load")) == 1
    assert local_ollama.events(kind="reload") == []
    assert len(local_ollama.events(kind="request_end")) == 10


def test_a_changed_runner_option_reloads_and_the_log_shows_it(local_ollama, http):
    for options in (
        {"num_ctx": 2048},
        {"num_ctx": 2048, "num_gpu": -1},
        {"num_ctx": 8192},
        {"num_ctx": 8192, "num_batch": 256},
    ):
        assert http.post("/api/chat", json={**chat_body(), "options": options}).status_code == 200
    reloads = local_ollama.events(kind="reload")
    assert [r["changed"] for r in reloads] == [["num_ctx"], ["num_batch"]]
    assert (reloads[0]["old_num_ctx"], reloads[0]["new_num_ctx"]) == (2048, 8192)
    assert reloads[1]["old"] == {"num_batch": 512} and reloads[1]["new"] == {"num_batch": 256}
    assert [e["cause"] for e in local_ollama.events(kind="unload")] == ["reload", "reload"]
    assert [e["num_ctx"] for e in local_ollama.events(kind="load")] == [2048, 8192, 8192]
    assert loaded(http)[0]["context_length"] == 8192


def test_num_ctx_is_clamped_to_the_trained_context(http):
    http.post("/api/chat", json={**chat_body(), "options": {"num_ctx": 10_000_000}}).raise_for_status()
    assert loaded(http)[0]["context_length"] == 131072
    http.post("/api/chat", json={**chat_body(), "options": {"num_ctx": 1}}).raise_for_status()
    assert loaded(http)[0]["context_length"] == 4


def test_a_reload_waits_for_the_requests_in_flight(local_ollama_factory):
    server = local_ollama_factory(delay=0.4)
    first = [{**chat_body(text=f"old {i}"), "options": {"num_ctx": 2048}} for i in range(3)]
    results: list[httpx.Response] = []
    worker = in_background(lambda: results.extend(post_concurrently(server.url, "/api/chat", first)))
    wait_for(lambda: len(server.events(kind="request_start")) == 3, message="3 requests running")
    late = httpx.post(
        f"{server.url}/api/chat", json={**chat_body(text="new"), "options": {"num_ctx": 4096}}, timeout=30
    )
    worker.join()
    assert late.status_code == 200 and [r.status_code for r in results] == [200] * 3
    events = server.events()
    unload = next(e for e in events if e["kind"] == "unload")
    assert unload["cause"] == "reload"
    old_ends = [e for e in events if e["kind"] == "request_end"][:3]
    assert all(e["seq"] < unload["seq"] for e in old_ends)


def test_eight_slots_run_eight_of_twelve_requests_at_once(local_ollama_factory):
    server = local_ollama_factory(num_parallel=8, delay=0.8)
    httpx.post(f"{server.url}/api/chat", json={"model": LLM, "messages": []}).raise_for_status()
    bodies = [chat_body(text=f"request {i}") for i in range(12)]
    responses = post_concurrently(server.url, "/api/chat", bodies)
    assert [r.status_code for r in responses] == [200] * 12
    assert max_in_flight(server.events()) == {LLM: 8}
    assert len(server.events(kind="request_start")) == 12


def test_embedding_only_models_run_with_parallel_1(local_ollama_factory):
    server = local_ollama_factory(num_parallel=8, delay=0.2)
    bodies = [{"model": EMBED, "input": f"text {i}"} for i in range(3)]
    assert [r.status_code for r in post_concurrently(server.url, "/api/embed", bodies)] == [200] * 3
    assert server.events(kind="load")[0]["parallel"] == 1
    assert max_in_flight(server.events()) == {EMBED_NAME: 1}


def test_a_full_queue_answers_503_while_a_load_blocks_the_scheduler(local_ollama_factory):
    server = local_ollama_factory(max_queue=2, load_delay=1.5)
    responses = post_concurrently(server.url, "/api/chat", [chat_body(text=f"q{i}") for i in range(8)])
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    assert all(r.json() == {"error": BUSY} for r in responses if r.status_code == 503)
    rejects = server.events(kind="reject")
    assert len(rejects) == statuses.count(503)
    assert rejects[0]["error"] == BUSY and rejects[0]["model"] == LLM


def test_max_loaded_models_1_evicts_the_resident_model(local_ollama_factory):
    server = local_ollama_factory(max_loaded_models=1)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.post("/api/chat", json=chat_body()).raise_for_status()
        http.post("/api/embed", json={"model": EMBED, "input": "hello"}).raise_for_status()
        assert [m["name"] for m in loaded(http)] == [EMBED_NAME]
    unloads = server.events(kind="unload")
    assert [(e["model"], e["cause"]) for e in unloads] == [(LLM, "evicted_max_loaded")]


def test_eviction_waits_until_the_resident_model_is_idle(local_ollama_factory):
    server = local_ollama_factory(max_loaded_models=1, delay=0.5)
    busy = in_background(httpx.post, f"{server.url}/api/chat", json=chat_body(), timeout=30)
    wait_for(lambda: server.events(kind="request_start"), message="the chat to start")
    httpx.post(f"{server.url}/api/embed", json={"model": EMBED, "input": "hello"}, timeout=30).raise_for_status()
    busy.join()
    order = [(e["kind"], e["model"]) for e in server.events() if e["kind"] in ("request_end", "unload", "load")]
    assert order == [
        ("load", LLM),
        ("request_end", LLM),
        ("unload", LLM),
        ("load", EMBED_NAME),
        ("request_end", EMBED_NAME),
    ]


def test_eviction_picks_the_idle_model_with_the_shortest_keep_alive(local_ollama_factory):
    server = local_ollama_factory(max_loaded_models=2)
    server.pull(SMALL)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.post("/api/chat", json={"model": LLM, "messages": [], "keep_alive": "10m"}).raise_for_status()
        http.post("/api/chat", json={"model": SMALL, "messages": [], "keep_alive": "1m"}).raise_for_status()
        http.post("/api/embed", json={"model": EMBED, "input": "x"}).raise_for_status()
        assert sorted(m["name"] for m in loaded(http)) == [LLM, EMBED_NAME]
    assert [(e["model"], e["cause"]) for e in server.events(kind="unload")] == [
        ("deterministic-tiny:latest", "evicted_max_loaded")
    ]


def test_a_model_that_does_not_fit_the_vram_evicts_another(local_ollama_factory):
    # gemma4 at num_ctx 4096 with 1 slot: 9.61 GB weights + 1.61 GB KV; the embedder adds 0.35 GB.
    server = local_ollama_factory(num_parallel=1, vram_bytes=11_300_000_000)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.post("/api/chat", json=chat_body()).raise_for_status()
        http.post("/api/embed", json={"model": EMBED, "input": "x"}).raise_for_status()
        assert [m["name"] for m in loaded(http)] == [EMBED_NAME]
    assert [(e["model"], e["cause"]) for e in server.events(kind="unload")] == [(LLM, "evicted_memory")]


def test_keep_alive_expiry_unloads(local_ollama, http):
    http.post("/api/chat", json={**chat_body(), "keep_alive": "2s"}).raise_for_status()
    assert timedelta(0) < expires_in(loaded(http)[0]) <= timedelta(seconds=2)
    wait_for(lambda: loaded(http) == [], timeout=5, message="the model to expire")
    assert [e["cause"] for e in local_ollama.events(kind="unload")] == ["keep_alive_expired"]


def test_keep_alive_0_with_a_prompt_unloads_after_the_request(local_ollama, http):
    answer = http.post("/api/chat", json={**chat_body(), "keep_alive": 0})
    assert answer.status_code == 200 and answer.json()["message"]["content"]
    wait_for(lambda: loaded(http) == [], timeout=5, message="the model to unload")
    kinds = [(e["kind"], e.get("cause")) for e in local_ollama.events() if e["kind"] in ("request_end", "unload")]
    assert kinds == [("request_end", None), ("unload", "keep_alive_0")]


def test_an_omitted_keep_alive_keeps_the_loaded_duration(http):
    http.post("/api/chat", json={**chat_body(), "keep_alive": "1h"}).raise_for_status()
    http.post("/api/chat", json=chat_body()).raise_for_status()
    assert timedelta(minutes=59) < expires_in(loaded(http)[0]) <= timedelta(hours=1)
    http.post("/api/chat", json={**chat_body(), "keep_alive": -1}).raise_for_status()
    assert expires_in(loaded(http)[0]) > timedelta(days=365 * 200)


def test_ps_reports_memory_as_weights_plus_kv_cache_per_slot(local_ollama_factory):
    server = local_ollama_factory(num_parallel=8, kv_cache_type="q8_0")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.post("/api/chat", json={**chat_body(), "options": {"num_ctx": 8192}}).raise_for_status()
        http.post("/api/embed", json={"model": EMBED, "input": "x", "options": {"num_ctx": 8192}}).raise_for_status()
        rows = {m["name"]: m for m in loaded(http)}
        tags = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
        info = http.post("/api/show", json={"model": LLM}).json()["model_info"]
    gemma = rows[LLM]
    per_slot = (
        2
        * info["gemma4.block_count"]
        * 8192
        * info["gemma4.attention.head_count_kv"]
        * info["gemma4.attention.key_length"]
        * 1.0625
    )
    assert gemma["size"] == tags[LLM]["size"] + int(per_slot * 8)
    assert gemma["size_vram"] == gemma["size"]
    assert gemma["context_length"] == 8192 and gemma["digest"] == tags[LLM]["digest"]
    assert gemma["details"] == tags[LLM]["details"] and gemma["model"] == gemma["name"] == LLM
    assert timedelta(minutes=4) < expires_in(gemma) <= timedelta(minutes=5)
    embed = rows[EMBED_NAME]
    assert embed["context_length"] == 2048  # clamped to nomic-embed-text's trained context
    assert embed["size"] == tags[EMBED_NAME]["size"] + int(2 * 12 * 2048 * 12 * 64 * 1.0625)  # one slot


def test_stopping_the_server_unloads_what_is_loaded(local_ollama_factory):
    server = local_ollama_factory()
    httpx.post(f"{server.url}/api/chat", json=chat_body()).raise_for_status()
    server.stop()
    assert [(e["model"], e["cause"]) for e in server.events(kind="unload")] == [(LLM, "shutdown")]
