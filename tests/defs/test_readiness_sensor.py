"""The Ollama readiness sensor, evaluated with ``build_sensor_context`` against the local server."""

from __future__ import annotations

import socket

from dagster import SkipReason, build_sensor_context

from autorag_dagster.defs.resources import OllamaResource
from autorag_dagster.defs.sensors import ollama_models_ready, ollama_readiness_skip_reason
from autorag_dagster.settings import load_settings


def evaluate(resource: OllamaResource) -> SkipReason:
    result = ollama_models_ready(build_sensor_context(resources={"ollama": resource}))
    assert isinstance(result, SkipReason)
    return result


def test_missing_models_skip_with_their_names_and_the_pull_command(local_ollama_factory):
    server = local_ollama_factory(pulled=["nomic-embed-text"])
    resource = OllamaResource(ollama_base_url=server.url, llm_model="gemma4:latest", embed_model="nomic-embed-text")

    message = evaluate(resource).skip_message

    assert "gemma4:latest" in message and server.url in message
    assert "autorag pull gemma4:latest" in message and "ollama pull gemma4:latest" in message
    assert "nomic-embed-text" not in message.split("Pull them")[0]
    assert ollama_readiness_skip_reason(resource) is not None


def test_all_models_pulled_reports_ready(local_ollama_factory):
    server = local_ollama_factory(pulled=["gemma4:latest", "nomic-embed-text:latest"])
    # "nomic-embed-text" and "nomic-embed-text:latest" are the same model.
    resource = OllamaResource(ollama_base_url=server.url, llm_model="gemma4", embed_model="nomic-embed-text")

    assert ollama_readiness_skip_reason(resource) is None
    message = evaluate(resource).skip_message
    assert message.startswith("Ready. All required models are pulled on the packaged autorag server (not Ollama")
    assert "gemma4 (deterministic test backend, not a language model)" in message


def test_unreachable_server_skips_with_how_to_start_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    message = evaluate(OllamaResource(ollama_base_url=url)).skip_message

    assert url in message and "autorag ollama-serve" in message and "AUTORAG_OLLAMA_BASE_URL" in message


def test_resource_mirrors_the_settings_in_its_client():
    settings = load_settings(
        ollama_base_url="http://ollama:11434",
        llm_model="qwen3:8b",
        num_ctx=4096,
        num_ctx_l1=16384,
        keep_alive=-1,
        max_concurrency=4,
        request_timeout=30,
        validation_retries=1,
        llm_temperature=0.2,
    )
    resource = OllamaResource.from_settings(settings)

    with resource.get_client() as client:
        assert (client.base_url, client.llm_model, client.embed_model) == (
            "http://ollama:11434",
            "qwen3:8b",
            "nomic-embed-text",
        )
        assert (client.num_ctx, client.keep_alive, client.max_concurrency) == (4096, "-1s", 4)
        assert (client.timeout, client.validation_retries, client.temperature) == (30, 1, 0.2)
    assert resource.num_ctx_l1 == 16384 and resource.required_models == ["qwen3:8b", "nomic-embed-text"]


def test_a_run_needs_the_models_of_the_steps_it_executes():
    from autorag_dagster.defs.resources import models_for_run

    resource = OllamaResource(llm_model="gemma4:latest", embed_model="nomic-embed-text")
    assert models_for_run(resource, "process_audio", {"audio", "transcript", "diarization"}) == []
    assert models_for_run(resource, "__ASSET_JOB", {"speaker_transcript", "topic_tree"}) == ["gemma4:latest"]
    assert models_for_run(resource, "process_audio", {"embeddings_embeddings_rows_valid"}) == ["nomic-embed-text"]
    assert models_for_run(resource, "process_audio", None) == ["gemma4:latest", "nomic-embed-text"]
    assert models_for_run(resource, "tidy_library", None) == []
