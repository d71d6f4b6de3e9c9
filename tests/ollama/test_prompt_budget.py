"""No prompt is cut silently: the client sizes every prompt before sending it and checks the
server's count in every answer, against the local Ollama-compatible server over real HTTP."""

from __future__ import annotations

import itertools

import pytest
from pydantic import BaseModel

from autorag_dagster.ollama import PromptTooLongError, PromptTruncatedError, TokenEstimator
from tests.support.models import LLM
from tests.support.ollama_clients import make_client
from tests.support.synthetic_transcripts import SUBJECTS


class Summary(BaseModel):
    title: str
    summary: str


def messages(words: int) -> list[dict]:
    text = " ".join(itertools.islice(itertools.cycle(SUBJECTS["garden"]), words))
    return [{"role": "system", "content": "Summarise the passage."}, {"role": "user", "content": text}]


def chats(server) -> list[dict]:
    return [e for e in server.events(kind="request_end") if e["endpoint"] == "chat"]


def test_estimate_only_grows_with_what_the_server_counts():
    estimator = TokenEstimator()
    prompt = messages(100)
    first = estimator.estimate(LLM, prompt)

    assert not estimator.observe(LLM, prompt, first - 10)  # fewer tokens than estimated: nothing to learn
    assert estimator.estimate(LLM, prompt) == first
    assert estimator.observe(LLM, prompt, 2 * first)  # more: the estimate now covers that count
    assert estimator.estimate(LLM, prompt) >= 2 * first
    assert estimator.estimate("another:model", prompt) == first  # per model


def test_a_prompt_over_the_budget_is_never_sent(server):
    with make_client(server.url, num_ctx=512, max_output_tokens=128) as client:
        prompt = messages(400)
        assert client.estimate_tokens(prompt) > client.prompt_budget() == 384

        with pytest.raises(PromptTooLongError) as caught:
            client.chat_structured(prompt, Summary)

    message = str(caught.value)
    assert f"about {client.estimate_tokens(prompt)} tokens" in message and "num_ctx 512 leaves 384" in message
    assert "AUTORAG_NUM_CTX" in message and "AUTORAG_LLM_MAX_OUTPUT_TOKENS" in message
    assert chats(server) == []


def test_a_prompt_within_the_budget_is_answered_whole(server):
    with make_client(server.url, num_ctx=512, max_output_tokens=128) as client:
        prompt = messages(150)
        assert client.fits(prompt)
        client.chat_structured(prompt, Summary)

    (end,) = chats(server)
    assert end["truncated"] is False and end["num_ctx"] == 512
    assert end["prompt_tokens"] == end["prompt_eval_count"] <= client.prompt_budget()


def test_an_answer_to_a_cut_prompt_is_refused_and_the_estimate_learns(server):
    """An estimate far too low lets a long prompt through; the server cuts it (as Ollama does) and
    says so in its event log; the client sees the count fill the context and refuses the answer."""
    with make_client(server.url, num_ctx=256, max_output_tokens=64) as client:
        client.tokens = TokenEstimator(chars_per_token=1000.0)
        prompt = messages(400)
        assert client.fits(prompt)

        with pytest.raises(PromptTruncatedError) as caught:
            client.chat_structured(prompt, Summary)

        (end,) = chats(server)
        assert end["truncated"] is True and end["prompt_tokens"] > end["num_ctx"] == 256
        assert "may have been cut" in str(caught.value) and "AUTORAG_NUM_CTX" in str(caught.value)
        # calibrated on the server's count: the same prompt is now refused before it is sent
        assert not client.fits(prompt)
        with pytest.raises(PromptTooLongError):
            client.chat_structured(prompt, Summary)
    assert len(chats(server)) == 1
