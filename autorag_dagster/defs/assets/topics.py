"""``topic_tree``: chapters and sub-topics with titles and summaries, from the LLM served by Ollama."""

from dagster import AssetExecutionContext, MetadataValue, asset

from autorag_dagster.core.topics import LlmResidency, TopicStats, build_topic_tree
from autorag_dagster.core.types import SpeakerTranscript, TopicTree
from autorag_dagster.defs.assets.common import per_file
from autorag_dagster.defs.io import file_dir, write_json_atomic
from autorag_dagster.defs.metadata import per_file_table
from autorag_dagster.defs.partitions import audio_files, single_run
from autorag_dagster.defs.resources import GpuResource, OllamaResource, StorageResource


def stats_metadata(stats: TopicStats) -> dict:
    return {
        "outline": MetadataValue.md(stats.outline_md or "(empty)"),
        "nodes": stats.node_count,
        "depth": stats.depth,
        "model": stats.model,
        "num_ctx": stats.num_ctx,
        "llm_calls": stats.llm_calls,
        "prompt_tokens": stats.prompt_tokens,
        "output_tokens": stats.eval_tokens,
        "cache_hits": stats.cache_hits,
        "llm_loads": stats.loads,
        "llm_reloads": stats.reloads,
        "max_in_flight": stats.max_in_flight,
        "stage_seconds": MetadataValue.json(stats.stage_seconds),
        "fallbacks": MetadataValue.json([f.model_dump() for f in stats.fallbacks]),
    }


@asset(
    partitions_def=audio_files,
    backfill_policy=single_run,
    io_manager_key="model_io",
    group_name="topics",
    code_version="topic-tree-1",
    pool="gpu",
    kinds={"ollama"},
)
def topic_tree(
    context: AssetExecutionContext,
    speaker_transcript: dict[str, SpeakerTranscript],
    storage: StorageResource,
    ollama: OllamaResource,
    gpu: GpuResource,
) -> dict[str, TopicTree]:
    """Time-bucketed view -> L1 boundaries -> split decisions -> L2 boundaries -> titles and
    summaries -> file summary. Every answer is schema-validated and repaired into a tiling."""
    client = ollama.get_client()
    tenancy = gpu.tenancy(client, log=context.log.info)
    all_stats: dict[str, TopicStats] = {}

    def one(key: str) -> TopicTree:
        tree, stats = build_topic_tree(
            speaker_transcript[key], client, tenancy=tenancy, residency=residency,
            cache_dir=storage.cache_dir, num_ctx_l1=ollama.num_ctx_l1, progress=context.log.info,
        )
        all_stats[key] = stats
        write_json_atomic(file_dir(storage.data_dir, key) / "topics.json", tree.model_dump(mode="json"))
        (file_dir(storage.data_dir, key) / "outline.md").write_text(stats.outline_md, encoding="utf-8")
        for fallback in stats.fallbacks:
            context.log.warning(f"{key}: fallback in stage {fallback.stage}: {fallback.reason}")
        return tree

    # One residency for every file of the run: the LLM loads once (on the first cache miss)
    # and is evicted after the last file, also when a file fails.
    with LlmResidency(client, tenancy) as residency:
        trees = per_file(context, speaker_transcript, one, what="Building the topic tree")
    metadata: dict = {"gpu_timeline": MetadataValue.md(tenancy.timeline_markdown())}
    if len(trees) == 1:
        metadata |= stats_metadata(next(iter(all_stats.values())))
    else:
        stats = all_stats.values()
        metadata |= {
            "llm_calls": sum(s.llm_calls for s in stats),
            "prompt_tokens": sum(s.prompt_tokens for s in stats),
            "output_tokens": sum(s.eval_tokens for s in stats),
            "cache_hits": sum(s.cache_hits for s in stats),
            "llm_loads": len(residency.loads),
            "llm_reloads": max(0, len(residency.loads) - 1),
            "max_in_flight": max((s.max_in_flight for s in stats), default=0),
        }
        metadata["files"] = per_file_table(
            [{"file": k, "nodes": s.node_count, "llm_calls": s.llm_calls, "cache_hits": s.cache_hits} for k, s in all_stats.items()]
        )
    context.add_output_metadata(metadata)
    return trees
