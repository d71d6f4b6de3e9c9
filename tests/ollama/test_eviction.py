"""Evictions as Ollama performs them: the unload answers at once and the model leaves /api/ps later."""

from __future__ import annotations

import time

import httpx
import pytest

from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama import ModelStillLoadedError
from tests.support.models import LLM
from tests.support.ollama_clients import make_client


def resident(url: str) -> list[str]:
    return [m["name"] for m in httpx.get(f"{url}/api/ps", timeout=10).json()["models"]]


def test_the_unload_answers_before_the_model_leaves_ps(start_server):
    server = start_server(unload_delay=1.0)
    with make_client(server.url) as client:
        client.warm()
    answer = httpx.post(f"{server.url}/api/generate", json={"model": LLM, "prompt": "", "keep_alive": 0}, timeout=10)
    assert answer.json()["done_reason"] == "unload"
    assert resident(server.url) == [LLM]  # asynchronous, as in Ollama: still listed for a moment
    assert server.events(kind="unload") == []


def test_evict_waits_through_an_asynchronous_unload(start_server):
    server = start_server(unload_delay=0.4)
    seen: list[tuple[str, dict]] = []
    with make_client(server.url, on_event=lambda kind, data: seen.append((kind, data))) as client:
        client.warm()
        started = time.monotonic()
        client.evict()
        waited = time.monotonic() - started
        assert client.ps() == []
    assert waited >= 0.4  # the client polled /api/ps until the runner had really stopped
    [unload] = server.events(kind="unload")
    assert (unload["model"], unload["cause"]) == (LLM, "keep_alive_0")
    assert ("evict", {"model": LLM}) in seen


def test_gpu_tenancy_confirms_each_eviction_through_ps(start_server):
    server = start_server(unload_delay=0.2)
    with make_client(server.url) as client:
        tenancy = GpuTenancy(client)
        client.warm()
        with tenancy.tenant("whisper"):
            assert client.ps() == []  # whisper starts only once the LLM has left
        assert [e["event"] for e in tenancy.timeline] == ["evict", "acquire", "release"]
    assert [e["cause"] for e in server.events(kind="unload")] == ["keep_alive_0"]


def test_a_model_that_never_unloads_is_a_legible_error(start_server):
    server = start_server(never_unload=[LLM])
    with make_client(server.url, evict_confirm_s=0.5) as client:
        client.warm()
        with pytest.raises(ModelStillLoadedError) as stuck:
            client.evict()
        assert [m.name for m in client.ps()] == [LLM]
    message = str(stuck.value)
    assert stuck.value.model == LLM and server.url in message
    assert "still loaded" in message and "0.5 s after it was asked to unload" in message
    assert f"ollama stop {LLM}" in message and "autorag models" in message and "restart the server" in message
    assert [e["kind"] for e in server.events() if e["kind"].startswith("unload")] == ["unload_ignored"]


def test_tenancy_records_a_failed_llm_eviction_and_goes_on(start_server):
    server = start_server(never_unload=[LLM])
    with make_client(server.url, evict_confirm_s=0.3) as client:
        tenancy = GpuTenancy(client)
        with tenancy.tenant("llm"):
            pass
    [failed] = [e for e in tenancy.timeline if e["event"] == "evict_failed"]
    assert failed["model"] == LLM and "is still loaded" in failed["error"]
