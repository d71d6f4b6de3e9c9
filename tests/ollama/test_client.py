"""The client contract against the local Ollama-compatible server, over real HTTP."""

from __future__ import annotations

import io
import math
import re

import pytest
from pydantic import BaseModel, Field
from rich.console import Console

from autorag_dagster.cli.render import pull_display
from autorag_dagster.ollama import (
    LLMOutputError,
    ModelNotFoundError,
    ModelPullError,
    OllamaBusyError,
    OllamaTimeoutError,
    OllamaUnreachableError,
    PullProgress,
)
from tests.support.models import EMBED, LLM
from tests.support.ollama_clients import make_client


class NodeSummary(BaseModel):
    """Title and summary of one topic node."""

    title: str = Field(min_length=1)
    summary: str
    importance: int = Field(ge=1, le=5)


class BoundaryDecision(BaseModel):
    reason: str
    split: bool


def ask(client, text: str, **kwargs):
    messages = [{"role": "system", "content": "Summarise the passage."}, {"role": "user", "content": text}]
    return client.chat_structured(messages, NodeSummary, **kwargs)


def test_batch_with_one_num_ctx_loads_once_and_keeps_the_contract(server, client):
    passages = [f"passage {i}: the speakers discuss budget item {i}" for i in range(6)]
    results = client.fan_out(lambda text: ask(client, text), passages)

    assert all(isinstance(r.value, NodeSummary) and r.attempts == 1 for r in results)
    assert len({r.raw for r in results}) == len(passages)  # answers derive from each prompt
    assert [e["num_ctx"] for e in server.events(kind="load")] == [8192]
    assert server.events(kind="reload") == [] and server.events(kind="unload") == []
    requests = server.events(kind="request_start")
    assert len(requests) == len(passages) == client.stats.llm_calls
    for request in requests:
        assert request["endpoint"] == "chat"
        assert request["think"] is False and request["format"] is True
        assert request["options"]["num_ctx"] == 8192 and request["options"]["temperature"] == 0.0
        assert request["keep_alive"] == "5m"
    stats = client.stats.snapshot()
    assert stats["llm_calls"] == 6 and stats["prompt_tokens"] > 0 and stats["eval_tokens"] > 0
    assert stats["validation_retries"] == stats["request_retries"] == stats["loads_seen"] == 0


def test_changed_num_ctx_reloads_visibly(server, client):
    ask(client, "first passage")
    ask(client, "second passage")
    ask(client, "a long first-level passage", num_ctx=16384)

    reloads = server.events(kind="reload")
    assert len(reloads) == 1
    assert (reloads[0]["old_num_ctx"], reloads[0]["new_num_ctx"]) == (8192, 16384)
    assert [e["num_ctx"] for e in server.events(kind="load")] == [8192, 16384]
    assert [m.context_length for m in client.ps()] == [16384]


def test_warm_then_evict_leaves_ps_empty(server, client):
    client.warm()
    (resident,) = client.ps()
    assert resident.name == LLM and resident.context_length == 8192 and resident.size_vram > 0

    client.evict()

    assert client.ps() == []
    (unload,) = server.events(kind="unload")
    assert unload["model"] == LLM and unload["cause"] == "keep_alive_0"


def test_evict_all_unloads_every_resident_model(start_server):
    server = start_server(max_loaded_models=2)
    with make_client(server.url) as client:
        client.warm()
        client.embed(["warm the embedder"])
        assert {m.name for m in client.ps()} == {LLM, f"{EMBED}:latest"}

        assert sorted(client.evict_all()) == sorted([LLM, f"{EMBED}:latest"])
        assert client.ps() == []


def test_requests_that_meet_a_load_are_counted(start_server):
    server = start_server(load_delay=0.6)
    with make_client(server.url) as client:
        first = ask(client, "first passage")
        second = ask(client, "second passage")

        assert first.load_duration_s >= 0.6 and second.attempts == 1
        assert client.stats.loads_seen == 1
    assert len(server.events(kind="load")) == 1


def test_fan_out_keeps_max_concurrency_in_flight(start_server):
    server = start_server(delay=1.0)
    with make_client(server.url, max_concurrency=8) as client:
        items = list(range(12))
        results = client.fan_out(lambda i: (i, ask(client, f"passage number {i}")), items)

        assert [i for i, _ in results] == items
        assert client.stats.max_in_flight == 8
        assert max(e["in_flight"] for e in server.events(kind="request_start")) == 8


def test_fan_out_raises_the_first_failure_in_item_order(client):
    def work(i: int) -> int:
        if i in (3, 5):
            raise ValueError(f"item {i} failed")
        return i * 2

    with pytest.raises(ValueError, match="item 3 failed"):
        client.fan_out(work, range(8))
    assert client.fan_out(lambda i: i * 2, range(4)) == [0, 2, 4, 6]


def test_invalid_answer_is_re_asked(server):
    server.script([{"match": "quarterly figures", "content": "Sure! Here is the summary:", "times": 1}])
    seen: list[tuple[str, dict]] = []
    with make_client(server.url, on_event=lambda kind, data: seen.append((kind, data))) as client:
        result = ask(client, "the quarterly figures were discussed")

        assert result.attempts == 2 and isinstance(result.value, NodeSummary)
        assert client.stats.validation_retries == 1 and client.stats.llm_calls == 2
    (retry,) = [data for kind, data in seen if kind == "validation_retry"]
    assert retry["schema"] == "NodeSummary" and "JSON" in retry["error"]
    # The re-ask keeps the conversation and the run's options: no reload.
    assert [e["num_ctx"] for e in server.events(kind="load")] == [8192] and not server.events(kind="reload")


def test_always_invalid_answer_raises_llm_output_error(server, client):
    # Matching on the schema title also proves the request's format carried the JSON schema.
    server.script([{"match": "BoundaryDecision", "content": '{"split": "perhaps"}'}])
    messages = [{"role": "user", "content": "Should this node be split?"}]

    with pytest.raises(LLMOutputError) as caught:
        client.chat_structured(messages, BoundaryDecision)

    error = caught.value
    assert error.raw_answers == ['{"split": "perhaps"}'] * 3
    assert "reason" in error.errors[-1] and "BoundaryDecision" in str(error)
    assert client.stats.validation_retries == 2


def test_unpulled_model_names_model_server_and_pull_command(server, client):
    with pytest.raises(ModelNotFoundError) as chat_error:
        ask(client, "anything", model="llama3.2:1b")
    with pytest.raises(ModelNotFoundError) as embed_error:
        client.embed(["text"], model="mxbai-embed-large")

    message = str(chat_error.value)
    assert "'llama3.2:1b'" in message and server.url in message
    assert "autorag pull llama3.2:1b" in message and "ollama pull llama3.2:1b" in message
    assert "autorag pull mxbai-embed-large" in str(embed_error.value)


def test_unreachable_server_says_how_to_start_it(closed_port_url):
    with make_client(closed_port_url) as client, pytest.raises(OllamaUnreachableError) as caught:
        ask(client, "anything")

    message = str(caught.value)
    assert closed_port_url in message
    for hint in ("ollama serve", "./scripts/stack.sh up", "autorag ollama-serve", "AUTORAG_OLLAMA_BASE_URL"):
        assert hint in message


# While a model loads, Ollama's scheduler takes no request from its queue, so with
# MAX_QUEUE 1 the third of four simultaneous first requests finds the queue full.


def test_full_queue_is_raised_as_busy_once_retries_are_spent(start_server):
    server = start_server(num_parallel=1, max_queue=1, load_delay=1.0)
    with make_client(server.url, request_retries=0, max_concurrency=4) as client:
        with pytest.raises(OllamaBusyError) as caught:
            client.fan_out(lambda i: ask(client, f"passage {i}"), range(4))

    assert server.events(kind="reject")
    message = str(caught.value)
    assert server.url in message and "busy" in message and "AUTORAG_MAX_CONCURRENCY" in message


def test_busy_answers_are_retried_with_backoff(start_server):
    server = start_server(num_parallel=1, max_queue=1, load_delay=1.0)
    with make_client(server.url, request_retries=12, backoff_s=0.2, max_concurrency=4) as client:
        results = client.fan_out(lambda i: ask(client, f"passage {i}"), range(4))

        assert len(results) == 4
        assert client.stats.request_retries >= 1
        assert len(server.events(kind="reject")) == client.stats.request_retries


def test_timeouts_are_retried_then_name_the_setting(start_server):
    server = start_server(delay=1.5)
    with make_client(server.url, timeout=0.5, request_retries=1) as client:
        client.warm()
        with pytest.raises(OllamaTimeoutError) as caught:
            ask(client, "slow passage")

        assert client.stats.request_retries == 1
    assert "AUTORAG_REQUEST_TIMEOUT" in str(caught.value) and "0.5 s" in str(caught.value)


def test_pull_streams_statuses_to_the_callback(start_server):
    server = start_server(pulled=[LLM])
    with make_client(server.url) as client:
        assert client.missing_models([LLM, EMBED]) == [EMBED]
        updates: list[PullProgress] = []

        client.pull(EMBED, updates.append)

        statuses = [u.status for u in updates]
        assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
        assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
        last_per_layer = {u.digest: u for u in updates if u.digest}
        assert last_per_layer and all(u.total and u.completed == u.total for u in last_per_layer.values())
        assert client.missing_models([LLM, EMBED]) == []


def test_pull_display_draws_a_bar_per_layer_on_a_terminal(start_server):
    server = start_server(pulled=[])
    screen = io.StringIO()
    with make_client(server.url) as client, pull_display(EMBED, Console(file=screen, force_terminal=True)) as show:
        client.pull(EMBED, show)

    output = screen.getvalue()
    assert "nomic-embed-text: pulling manifest" in output and "nomic-embed-text: success" in output
    assert re.search(r"nomic-embed-text pulling [0-9a-f]{12} .*━.* MB", output)  # a bar with the layer size


def test_pull_of_an_unknown_model_fails_legibly(server, client):
    with pytest.raises(ModelPullError) as caught:
        client.pull("no-such-model:7b", lambda update: None)

    message = str(caught.value)
    assert "'no-such-model:7b'" in message and server.url in message
    assert "file does not exist" in message


def test_missing_models_treats_latest_tag_as_default(client):
    required = ["gemma4", "nomic-embed-text:latest", "llama3.2:1b", "Gemma4:latest"]
    assert client.missing_models(required) == ["llama3.2:1b"]


def test_embed_batches_and_matches_the_model_dimension(client):
    texts = [f"chunk {i} about the roadmap" for i in range(5)]
    vectors = client.embed(texts, batch_size=2)

    info = client.show(EMBED)["model_info"]
    dimension = info[f"{info['general.architecture']}.embedding_length"]
    assert len(vectors) == 5 and client.stats.embed_calls == 3
    assert all(len(v) == dimension and math.isclose(math.hypot(*v), 1.0, rel_tol=1e-4) for v in vectors)
    assert client.embed(texts[:1]) == vectors[:1]
