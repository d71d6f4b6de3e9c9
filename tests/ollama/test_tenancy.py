"""GPU tenancy against the local server: evictions, warm-up, and the timeline they leave."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from autorag_dagster.gpu import GpuTenancy, TenancyError
from tests.support.models import EMBED, LLM
from tests.support.ollama_clients import make_client


class Title(BaseModel):
    title: str


def test_whisper_after_a_warm_llm_evicts_it_first(server, client):
    messages: list[str] = []
    tenancy = GpuTenancy(client, log=messages.append)
    client.warm()
    assert [m.name for m in client.ps()] == [LLM]

    with tenancy.tenant("whisper"):
        assert client.ps() == []
        (unload,) = server.events(kind="unload")
        assert unload["model"] == LLM and unload["cause"] == "keep_alive_0"
        assert tenancy.active == "whisper"

    assert tenancy.active is None
    assert [(e["event"], e["tenant"]) for e in tenancy.timeline] == [
        ("evict", "whisper"),
        ("acquire", "whisper"),
        ("release", "whisper"),
    ]
    assert tenancy.timeline[0]["model"] == LLM
    assert any("evict [whisper]" in line for line in messages)


def test_llm_tenant_warms_with_the_run_context_and_evicts_on_exit(server, client):
    tenancy = GpuTenancy(client)

    with tenancy.tenant("llm"):
        (resident,) = client.ps()
        assert resident.name == LLM and resident.context_length == 8192
        client.fan_out(lambda i: client.chat_structured([{"role": "user", "content": f"passage {i}"}], Title), range(3))

    assert client.ps() == []
    assert [e["num_ctx"] for e in server.events(kind="load")] == [8192]
    assert server.events(kind="reload") == []
    warm = tenancy.timeline[0]
    assert (warm["event"], warm["num_ctx"], warm["context_length"]) == ("warm", 8192, 8192)
    assert [e["event"] for e in tenancy.timeline] == ["warm", "acquire", "evict", "release"]


def test_llm_is_evicted_even_when_the_stage_fails(client):
    tenancy = GpuTenancy(client)

    with pytest.raises(RuntimeError, match="stage failed"), tenancy.tenant("llm"):
        raise RuntimeError("stage failed")

    assert client.ps() == [] and tenancy.active is None


def test_embedder_keeps_the_embedding_model_resident(start_server):
    server = start_server(max_loaded_models=2)
    with make_client(server.url) as client:
        client.embed(["load the embedder"])
        client.warm()
        tenancy = GpuTenancy(client)

        with tenancy.tenant("embedder"):
            assert [m.name for m in client.ps()] == [f"{EMBED}:latest"]
            client.embed(["a chunk"])

        assert [e["model"] for e in server.events(kind="unload")] == [LLM]


def test_a_second_tenant_while_one_is_active_is_refused(client):
    tenancy = GpuTenancy(client)
    with tenancy.tenant("whisper"):
        with pytest.raises(TenancyError, match="'diarizer' requested while 'whisper' holds the GPU"):
            with tenancy.tenant("diarizer"):
                pass
        assert tenancy.active == "whisper"
    with pytest.raises(TenancyError, match="Unknown GPU tenant 'tts'"):
        with tenancy.tenant("tts"):
            pass


def test_timeline_is_ordered_and_renders_as_markdown(client):
    tenancy = GpuTenancy(client)
    with tenancy.tenant("llm"):
        pass
    with tenancy.tenant("whisper"):
        pass
    with tenancy.tenant("diarizer"):
        pass

    offsets = [e["t_s"] for e in tenancy.timeline]
    assert offsets == sorted(offsets)
    assert [e["at"] for e in tenancy.timeline] == sorted(e["at"] for e in tenancy.timeline)
    assert [e["event"] for e in tenancy.timeline if e["event"] in ("acquire", "release")] == ["acquire", "release"] * 3
    table = tenancy.timeline_markdown().splitlines()
    assert table[0].startswith("| t (s) | event | tenant | model |")
    assert len(table) == 2 + len(tenancy.timeline)
    assert f"| warm | llm | {LLM} |" in table[2]


def test_whisper_runs_without_an_ollama_server_and_the_timeline_says_so():
    from autorag_dagster.ollama import OllamaClient
    from autorag_dagster.ollama.errors import OllamaUnreachableError

    client = OllamaClient("http://127.0.0.1:9", llm_model=LLM, embed_model=EMBED, request_retries=0, timeout=2)
    tenancy = GpuTenancy(client)
    with tenancy.tenant("whisper"):
        pass
    assert [e["event"] for e in tenancy.timeline] == ["ollama_unreachable", "acquire", "release"]
    assert "127.0.0.1:9" in tenancy.timeline[0]["detail"]
    with pytest.raises(OllamaUnreachableError), tenancy.tenant("embedder"):  # the embedder needs the server
        pass
