"""``embeddings`` (per file, into LanceDB) and ``lancedb_index`` (the whole table's indexes)."""

from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from autorag_dagster.core.chunking import build_records
from autorag_dagster.core.store import SegmentStore, embed_and_write
from autorag_dagster.core.types import AudioInfo, EmbeddingsWrite, SpeakerTranscript, TopicTree
from autorag_dagster.defs.assets.common import per_file, per_file_asset, report
from autorag_dagster.defs.jobs import MAINTENANCE_GROUP
from autorag_dagster.defs.resources import GpuResource, OllamaResource, StorageResource


@per_file_asset(group="search", code_version="embeddings-2", kinds={"lancedb", "ollama"}, gpu=True)
def embeddings(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speaker_transcript: dict[str, SpeakerTranscript],
    topic_tree: dict[str, TopicTree],
    storage: StorageResource,
    ollama: OllamaResource,
    gpu: GpuResource,
) -> dict[str, EmbeddingsWrite]:
    """Transcript chunks and topic nodes embedded through /api/embed; this file's rows replaced
    in one LanceDB commit (a rerun leaves no duplicates, a failed write leaves the old rows)."""
    client = ollama.get_client()
    with gpu.tenant(context, "embedder", client):  # evicts the LLM first and confirms it through /api/ps

        def one(key: str) -> EmbeddingsWrite:
            records = build_records(speaker_transcript[key], topic_tree[key])
            return embed_and_write(
                storage.layout.lancedb, ollama.embed_model, key, records, client.embed, source_hash=audio[key].sha256
            )

        writes = per_file(context, speaker_transcript, one, what="Embedding")
    report(
        context,
        writes,
        common={"embedding_model": ollama.embed_model, "lancedb": storage.layout.lancedb},
        one=lambda key, w: {
            "table": w.table,
            "rows": w.rows,
            "dim": w.dim,
            "inserted": w.inserted,
            "updated": w.updated,
            "deleted": w.deleted,
            "table_version": w.version,
        },
        row=lambda key, w: {"rows": w.rows, "table": w.table},
    )
    return writes


@asset(
    deps=[embeddings],
    group_name=MAINTENANCE_GROUP,
    automation_condition=AutomationCondition.eager(),
    kinds={"lancedb"},
)
def lancedb_index(
    context: AssetExecutionContext, storage: StorageResource, ollama: OllamaResource
) -> MaterializeResult:
    """Full-text index, a vector index once the table needs one, and compaction."""
    store = SegmentStore.for_model(storage.layout.lancedb, ollama.embed_model)
    report = store.maintain()
    for action in report.actions:
        context.log.info(action)
    return MaterializeResult(
        metadata={
            "table": report.table,
            "rows": report.rows,
            "actions": MetadataValue.md("\n".join(f"- {a}" for a in report.actions)),
            "indices": MetadataValue.json(report.indices),
            "other_tables": MetadataValue.json(report.other_tables),
        }
    )
