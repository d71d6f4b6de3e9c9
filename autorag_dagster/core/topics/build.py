"""``build_topic_tree``: the stages of one file in order, with the run's statistics."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from autorag_dagster.core.topics.cache import AnswerCache
from autorag_dagster.core.topics.runner import Fallback, LlmResidency, StageRunner
from autorag_dagster.core.topics.stages import (
    FileContext,
    TopicConfig,
    decide_splits,
    level1,
    level2,
    summarise,
    summarise_file,
)
from autorag_dagster.core.topics.tree import outline_markdown
from autorag_dagster.core.types import SpeakerTranscript, TopicTree
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama.client import OllamaClient

STAGES = ("level1", "split", "level2", "summary", "file")


def _node_order(node_id: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in node_id.split(".")) if node_id else ()


class TopicStats(BaseModel):
    """What one run of the stages did and cost, for the asset's metadata."""

    outline_md: str
    node_count: int
    depth: int
    model: str
    num_ctx: int
    num_ctx_l1: int | None
    llm_calls: int
    prompt_tokens: int
    eval_tokens: int
    validation_retries: int
    semantic_retries: int
    cache_hits: int
    cache_misses: int
    loads: int
    reloads: int
    load_events: list[dict]
    max_in_flight: int
    stage_seconds: dict[str, float]
    fallbacks: list[Fallback]
    fallback_counts: dict[str, int] = {}
    level1_source: str = "none"
    windows: dict[str, int] = {}
    """Per stage, the prompts made of windows (map-reduce) because the whole input did not fit in num_ctx."""
    tenancy_timeline: list[dict]


def build_topic_tree(
    transcript: SpeakerTranscript,
    client: OllamaClient,
    *,
    tenancy: GpuTenancy | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_ctx_l1: int | None = None,
    config: TopicConfig | None = None,
    residency: LlmResidency | None = None,
    progress: Callable[[str], object] | None = None,
) -> tuple[TopicTree, TopicStats]:
    """The topic tree of ``transcript`` and the run's statistics.

    Level-1 boundaries are chosen by the model among lexical candidates (``stats.level1_source``
    says ``"llm"``), or are the lexical segmentation itself when the answer was unusable
    (``"lexical"``, also counted in ``stats.fallback_counts``) or ``"single"`` for a file too short to divide.
    The LLM is loaded through ``tenancy`` (one is made around ``client`` if not given) on the
    first answer that is not in the cache under ``cache_dir``, with the client's ``num_ctx``,
    or ``num_ctx_l1`` for the level-1 stage (then switching back costs exactly one reload,
    reported in the stats); it is evicted when the stages end, also when one raises.
    A ``residency`` shared by several files keeps the model loaded across them; its owner
    closes it (evicting the model) after the last file. ``progress`` hears about each stage.
    """
    config = config or TopicConfig()
    num_ctx_l1 = num_ctx_l1 or config.num_ctx_l1
    tenancy = tenancy or GpuTenancy(client)
    timeline_start = len(tenancy.timeline)
    counters = ("llm_calls", "prompt_tokens", "eval_tokens", "validation_retries", "loads_seen")
    before = {name: getattr(client.stats, name) for name in counters}
    run = StageRunner(
        client,
        tenancy,
        AnswerCache(Path(cache_dir)) if cache_dir is not None else None,
        num_ctx_l1=num_ctx_l1,
        residency=residency,
    )
    ctx = FileContext.of(transcript, config)
    seconds: dict[str, float] = {}

    @contextmanager
    def stage(name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds[name] = round(time.perf_counter() - started, 3)
            if progress is not None:
                progress(
                    f"{transcript.key}: stage {name} took {seconds[name]:.1f} s ({client.stats.llm_calls} LLM calls so far)"
                )

    try:
        with stage("level1"):
            nodes = level1(run, ctx)
        with stage("split"):
            chosen = decide_splits(run, ctx, nodes)
        with stage("level2"):
            level2(run, ctx, chosen)
        with stage("summary"):
            summarise(run, ctx, [n for top in nodes for n in top.walk()])
        with stage("file"):
            title, summary = summarise_file(run, ctx, nodes)
    finally:
        run.close()

    tree = TopicTree(
        key=transcript.key,
        duration_s=transcript.duration_s,
        title=title,
        summary=summary,
        model=client.llm_model,
        nodes=nodes,
    )
    spent = {name: int(getattr(client.stats, name) - before[name]) for name in counters}
    loads = len(run.loads) + spent["loads_seen"]
    stats = TopicStats(
        outline_md=outline_markdown(tree),
        node_count=sum(1 for _ in tree.walk()),
        depth=tree.depth,
        model=client.llm_model,
        num_ctx=client.num_ctx,
        num_ctx_l1=num_ctx_l1,
        llm_calls=spent["llm_calls"],
        prompt_tokens=spent["prompt_tokens"],
        eval_tokens=spent["eval_tokens"],
        validation_retries=spent["validation_retries"],
        semantic_retries=run.semantic_retries,
        cache_hits=run.cache_hits,
        cache_misses=run.cache_misses,
        loads=loads,
        reloads=max(0, loads - 1),
        load_events=run.loads,
        max_in_flight=run.max_in_flight,
        stage_seconds=seconds,
        fallbacks=sorted(run.fallbacks, key=lambda f: (STAGES.index(f.stage), _node_order(f.node))),
        fallback_counts={stage: n for stage in STAGES if (n := run.fallback_counts().get(stage, 0))},
        level1_source=ctx.level1_source,
        windows={stage: n for stage in STAGES if (n := run.windows.get(stage, 0))},
        tenancy_timeline=tenancy.timeline[timeline_start:],
    )
    return tree, stats


def describe_fallbacks(counts: dict[str, int]) -> str:
    """``"level1 1, summary 2"`` (stages whose answers were replaced), or ``"none"``."""
    return ", ".join(f"{stage} {n}" for stage, n in counts.items() if n) or "none"
