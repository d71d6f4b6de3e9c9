"""The nightly backfill: every audio file whose results are missing or stale, as one run.

Stale means the source changed (its sha256 differs from the one ``audio`` recorded; a file is
hashed again only when its size or mtime changed) or an asset's ``code_version`` changed since
that file was materialised. The run covers exactly the stale files as one partition range
(``partitions.range_tags``), stage by stage, so each model loads once for all of them.
"""

from dagster import (
    AssetRecordsFilter,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from autorag_dagster.core.audio import AudioDecodeError, probe
from autorag_dagster.core.hashes import HashIndex
from autorag_dagster.core.keys import valid_keys, validate_key
from autorag_dagster.defs.jobs import process_audio
from autorag_dagster.defs.partitions import audio_files, range_tags
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.defs.sensors import ollama_readiness_skip_reason

CODE_VERSION_TAG = "dagster/code_version"


def stale_reasons(
    context: ScheduleEvaluationContext, storage: StorageResource, keys: list[str], hashes: HashIndex
) -> dict[str, str]:
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
                if hashes.sha256(source) != recorded_sha:
                    reasons[key] = "source file changed"
    return reasons


def nightly_backfill_schedule(cron: str) -> ScheduleDefinition:
    """The nightly backfill on ``cron`` (AUTORAG_BACKFILL_CRON), built when the definitions are."""

    @schedule(
        name="nightly_backfill",
        cron_schedule=cron,
        job=process_audio,
        default_status=DefaultScheduleStatus.STOPPED,
        description="Nightly: one run over every audio file whose results are missing or stale.",
    )
    def nightly_backfill(context: ScheduleEvaluationContext, storage: StorageResource, ollama: OllamaResource):
        return evaluate_nightly_backfill(context, storage, ollama)

    return nightly_backfill


def evaluate_nightly_backfill(
    context: ScheduleEvaluationContext, storage: StorageResource, ollama: OllamaResource
) -> RunRequest | SkipReason:
    """One run over every stale file, stage by stage (each model loads once), even when the
    stale files are not neighbours in the partition order; unreadable files are left out."""
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

    hashes = HashIndex(storage.layout.source_hashes)
    reasons = stale_reasons(context, storage, keys, hashes)
    hashes.save()
    # A file that does not even open as audio would fail the whole single run: it is left out
    # (and named) so that every other file gets its results.
    unreadable = {}
    for key in list(reasons):
        try:
            probe(validate_key(storage.audio_dir, key))
        except AudioDecodeError as exc:
            unreadable[key] = str(exc)
            del reasons[key]
            context.log.warning(f"Left out of the nightly run: {exc}")
    left_out = f" Left out, unreadable: {'; '.join(unreadable.values())}" if unreadable else ""
    if not reasons:
        return SkipReason(
            f"All {len(keys) - len(unreadable)} readable audio file(s) in {storage.audio_dir} are up to date.{left_out}"
        )
    stale = sorted(reasons)
    context.log.info(
        f"{len(stale)} stale file(s), {hashes.hashed} hashed: "
        + "; ".join(f"{k} ({why})" for k, why in sorted(reasons.items())[:20])
        + left_out
    )
    return RunRequest(
        run_key=None,
        tags={
            **range_tags(context.instance, stale),
            "autorag/trigger": "nightly_backfill",
            "autorag/stale": "; ".join(f"{k}: {why}" for k, why in sorted(reasons.items()))[:4000],
        },
    )
