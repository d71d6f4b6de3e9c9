"""The nightly backfill: every audio file whose results are missing or stale, as one backfill.

Stale means the source changed (its sha256 differs from the one ``audio`` recorded) or an
asset's ``code_version`` changed since that file was materialised. With the assets'
single-run backfill policy the backfill executes as one run, stage by stage, so each model
loads once for all files.
"""

from dagster import (
    AssetRecordsFilter,
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from autorag_dagster.core.audio import AudioDecodeError, probe, sha256_file
from autorag_dagster.core.keys import validate_key, valid_keys
from autorag_dagster.defs.backfill import launch_backfill
from autorag_dagster.defs.jobs import process_audio
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.defs.sensors import ollama_readiness_skip_reason

CODE_VERSION_TAG = "dagster/code_version"


def stale_reasons(context: ScheduleEvaluationContext, storage: StorageResource, keys: list[str]) -> dict[str, str]:
    """For each key that needs work, why: missing, source changed, or code changed."""
    graph = context.repository_def.asset_graph
    per_file_assets = [k for k in process_audio.selection.resolve(graph)]
    instance = context.instance
    reasons: dict[str, str] = {}
    for key in keys:
        stored = storage.layout.stored_path("audio", key)
        for asset_key in sorted(per_file_assets, key=lambda k: k.to_user_string()):
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
            ).records
            if not records:
                reasons[key] = f"{asset_key.to_user_string()} never materialised"
                break
            materialization = records[0].asset_materialization
            recorded = (materialization.tags or {}).get(CODE_VERSION_TAG) if materialization else None
            current = graph.get(asset_key).code_version
            if current and recorded != current:
                reasons[key] = f"{asset_key.to_user_string()} code changed ({recorded} -> {current})"
                break
        else:
            if not stored.exists():
                reasons[key] = "decoded audio missing"
            else:
                recorded_sha = storage.layout.read_stored("audio", key).sha256
                source = validate_key(storage.audio_dir, key)
                if sha256_file(source) != recorded_sha:
                    reasons[key] = "source file changed"
    return reasons


def nightly_backfill_schedule(cron: str) -> ScheduleDefinition:
    """The nightly backfill on ``cron`` (AUTORAG_BACKFILL_CRON), built when the definitions are."""

    @schedule(
        name="nightly_backfill",
        cron_schedule=cron,
        job=process_audio,
        default_status=DefaultScheduleStatus.STOPPED,
        description="Nightly: one backfill of every audio file whose results are missing or stale.",
    )
    def nightly_backfill(context: ScheduleEvaluationContext, storage: StorageResource, ollama: OllamaResource):
        return evaluate_nightly_backfill(context, storage, ollama)

    return nightly_backfill


def evaluate_nightly_backfill(context: ScheduleEvaluationContext, storage: StorageResource, ollama: OllamaResource):
    skip = ollama_readiness_skip_reason(ollama)
    if skip is not None:
        return skip
    candidates, rejected = valid_keys(storage.audio_dir)
    for exc in rejected:
        context.log.warning(str(exc))
    keys = [c.key for c in candidates]
    known = set(context.instance.get_dynamic_partitions(audio_files.name))
    if new := [k for k in keys if k not in known]:
        context.instance.add_dynamic_partitions(audio_files.name, new)

    reasons = stale_reasons(context, storage, keys)
    # A file that does not even open as audio would fail the whole single run of the backfill:
    # it is left out (and named) so that every other file gets its results.
    unreadable = {}
    for key in list(reasons):
        try:
            probe(validate_key(storage.audio_dir, key))
        except AudioDecodeError as exc:
            unreadable[key] = str(exc)
            del reasons[key]
            context.log.warning(f"Left out of the backfill: {exc}")
    left_out = f" Left out, unreadable: {'; '.join(unreadable.values())}" if unreadable else ""
    if not reasons:
        return SkipReason(
            f"All {len(keys) - len(unreadable)} readable audio file(s) in {storage.audio_dir} are up to date.{left_out}"
        )
    graph = context.repository_def.asset_graph
    backfill_id = launch_backfill(
        context.instance,
        graph,
        partition_keys=sorted(reasons),
        assets=sorted(process_audio.selection.resolve(graph), key=str),
        title=f"Nightly backfill of {len(reasons)} audio file(s)",
        description="\n".join(f"{k}: {why}" for k, why in sorted(reasons.items())),
        tags={"autorag/trigger": "nightly_backfill"},
    )
    listed = "; ".join(f"{k} ({why})" for k, why in sorted(reasons.items())[:20])
    return SkipReason(f"Launched backfill {backfill_id} for {len(reasons)} file(s): {listed}.{left_out}")
