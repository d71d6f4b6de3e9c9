"""``embeddings`` (per file, into LanceDB) and ``lancedb_index`` (the whole table's indexes)."""

from dataclasses import asdict

from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from autorag_dagster.core.chunking import build_records
from autorag_dagster.core.store import SegmentStore, embed_and_write
from autorag_dagster.core.types import AudioInfo, EmbeddingsWrite, SpeakerTranscript, TopicTree
from autorag_dagster.defs.assets.common import per_file
from autorag_dagster.defs.jobs import MAINTENANCE_GROUP
from autorag_dagster.defs.metadata import per_file_table
from autorag_dagster.defs.partitions import audio_files, single_run
from autorag_dagster.defs.resources import GpuResource, OllamaResource, StorageResource


@asset(
    partitions_def=audio_files,
    backfill_policy=single_run,
    io_manager_key="model_io",
    group_name="search",
    code_version="embeddings-1",
    pool="gpu",
    kinds={"lancedb", "ollama"},
)
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
    tenancy = gpu.tenancy(client, log=context.log.info)
    with tenancy.tenant("embedder"):  # evicts the LLM first and confirms it through /api/ps

        def one(key: str) -> EmbeddingsWrite:
            records = build_records(speaker_transcript[key], topic_tree[key])
            report = embed_and_write(
                storage.lancedb_location, ollama.embed_model, key, records,
                lambda texts: client.embed(texts), source_hash=audio[key].sha256,
            )
            return EmbeddingsWrite(**asdict(report))

        reports = per_file(context, speaker_transcript, one, what="Embedding")
    metadata: dict = {
        "embedding_model": ollama.embed_model,
        "lancedb": storage.lancedb_location,
        "gpu_timeline": MetadataValue.md(tenancy.timeline_markdown()),
    }
    if len(reports) == 1:
        report = next(iter(reports.values()))
        metadata |= {"table": report.table, "rows": report.rows, "dim": report.dim, "inserted": report.inserted,
                     "updated": report.updated, "deleted": report.deleted, "table_version": report.version}
    else:
        metadata["files"] = per_file_table([{"file": k, "rows": r.rows, "table": r.table} for k, r in reports.items()])
    context.add_output_metadata(metadata)
    return reports


@asset(
    deps=[embeddings],
    group_name=MAINTENANCE_GROUP,
    automation_condition=AutomationCondition.eager(),
    kinds={"lancedb"},
)
def lancedb_index(context: AssetExecutionContext, storage: StorageResource, ollama: OllamaResource) -> MaterializeResult:
    """Full-text index, a vector index once the table needs one, and compaction."""
    store = SegmentStore.for_model(storage.lancedb_location, ollama.embed_model)
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
