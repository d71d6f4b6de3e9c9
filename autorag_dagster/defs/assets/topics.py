"""``topic_tree``: chapters and sub-topics with titles and summaries, from the LLM served by Ollama;
the exports of the tree (JSON, outline, chapter files, the Markdown note) are written with it."""

from dagster import AssetExecutionContext, MetadataValue

from autorag_dagster.core import atomic
from autorag_dagster.core.chapters import export_chapters
from autorag_dagster.core.notes import write_note
from autorag_dagster.core.speakers import with_names
from autorag_dagster.core.topics import LlmResidency, TopicConfig, TopicStats, build_topic_tree, describe_fallbacks
from autorag_dagster.core.types import SpeakerTranscript, TopicTree
from autorag_dagster.defs.assets.common import per_file, per_file_asset, report
from autorag_dagster.defs.metadata import links
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
        "level1_source": stats.level1_source,
        "fallback_counts": MetadataValue.json(stats.fallback_counts),
        "prompt_windows": MetadataValue.json(stats.windows),
        "fallbacks": MetadataValue.json([f.model_dump() for f in stats.fallbacks]),
    }


@per_file_asset(group="topics", code_version="topic-tree-4", kinds={"ollama"}, gpu=True)
def topic_tree(
    context: AssetExecutionContext,
    speaker_transcript: dict[str, SpeakerTranscript],
    storage: StorageResource,
    ollama: OllamaResource,
    gpu: GpuResource,
) -> dict[str, TopicTree]:
    """Time-bucketed view -> L1 boundaries -> split decisions -> L2 boundaries -> titles and
    summaries -> file summary. Every answer is schema-validated and repaired into a tiling.
    Exports: topics.json, outline.md, chapters (.vtt, .json, .txt, .ffmetadata) and the note."""
    client = ollama.get_client()
    layout = storage.layout
    all_stats: dict[str, TopicStats] = {}
    exports: dict[str, dict] = {}

    def one(key: str) -> TopicTree:
        tree, stats = build_topic_tree(
            speaker_transcript[key],
            client,
            tenancy=tenancy,
            residency=residency,
            cache_dir=layout.llm_cache,
            config=TopicConfig(num_ctx_l1=ollama.num_ctx_l1),
            progress=context.log.info,
        )
        all_stats[key] = stats
        folder = layout.file_dir(key)
        atomic.write_json(layout.topic_stats(key), stats.model_dump(mode="json"))
        exports[key] = {
            "json": atomic.write_json(folder / "topics.json", tree.model_dump(mode="json")),
            "outline": atomic.write_text(folder / "outline.md", stats.outline_md),
            **export_chapters(tree, folder),
            "note": write_note(  # under the speakers' names
                with_names(speaker_transcript[key], speaker_transcript[key].names), tree, layout.note_path(key)
            ),
        }
        for fallback in stats.fallbacks:
            context.log.warning(f"{key}: fallback in stage {fallback.stage}: {fallback.reason}")
        return tree

    # One residency for every file of the run: the LLM loads once (on the first cache miss)
    # and is evicted after the last file, also when a file fails.
    with gpu.tenancy(context, client) as tenancy, LlmResidency(client, tenancy) as residency:
        trees = per_file(context, speaker_transcript, one, what="Building the topic tree")
    stats = all_stats.values()
    common = {"notes": MetadataValue.path(str(layout.notes_dir.resolve()))}
    if len(trees) > 1:
        common |= {
            "llm_calls": sum(s.llm_calls for s in stats),
            "prompt_tokens": sum(s.prompt_tokens for s in stats),
            "output_tokens": sum(s.eval_tokens for s in stats),
            "cache_hits": sum(s.cache_hits for s in stats),
            "llm_loads": len(residency.loads),
            "llm_reloads": max(0, len(residency.loads) - 1),
            "max_in_flight": max((s.max_in_flight for s in stats), default=0),
        }
    report(
        context,
        trees,
        common=common,
        one=lambda key, tree: {**stats_metadata(all_stats[key]), "exports": links(exports[key])},
        row=lambda key, tree: {
            "nodes": all_stats[key].node_count,
            "level 1 from": all_stats[key].level1_source,
            "fallbacks": describe_fallbacks(all_stats[key].fallback_counts),
            "llm_calls": all_stats[key].llm_calls,
            "cache_hits": all_stats[key].cache_hits,
            "note": exports[key]["note"].name,
        },
    )
    return trees
