"""Sensors. Runs are requested only once every required Ollama model is pulled."""

import hashlib
import json
import time

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from autorag_dagster.core.keys import valid_keys
from autorag_dagster.defs.jobs import DIARIZED_ASSETS, NAMED_ASSETS
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.ollama import Readiness, check_models

READINESS_TIMEOUT_S = 10.0
# A file whose size and mtime did not change for this long is complete; a younger one must
# look the same on two consecutive ticks (it may still be copied or recorded).
SETTLE_SECONDS = 30.0


def readiness(ollama: OllamaResource) -> Readiness:
    with ollama.get_client(timeout=READINESS_TIMEOUT_S, request_retries=0) as client:
        return check_models(client, ollama.required_models)


def ollama_readiness_skip_reason(ollama: OllamaResource) -> SkipReason | None:
    """A ``SkipReason`` naming the missing models and the pull command, or None when all are pulled."""
    found = readiness(ollama)
    return None if found.ready else SkipReason(found.message)


@sensor(minimum_interval_seconds=60, description="Reports whether every required Ollama model is pulled.")
def ollama_models_ready(context: SensorEvaluationContext, ollama: OllamaResource) -> SkipReason:
    found = readiness(ollama)
    # Ready or not, the tick says which server answered (Ollama or the packaged one) and, on the
    # packaged server, which backend runs each model.
    return SkipReason(f"Ready. {found.message}" if found.ready else found.message)


def _signature(size: int, mtime: float) -> list:
    return [size, round(mtime, 6)]


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    job_name="process_audio",
    description=(
        "Watches AUTORAG_AUDIO_DIR: adds a partition per new audio file and requests a run for new or "
        "changed files once their size is stable. Requests nothing while Ollama models are missing."
    ),
)
def audio_folder_sensor(
    context: SensorEvaluationContext, storage: StorageResource, ollama: OllamaResource
) -> SensorResult | SkipReason:
    skip = ollama_readiness_skip_reason(ollama)
    if skip is not None:
        return skip  # the cursor stays: nothing found now is forgotten

    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list] = cursor.get("seen", {})  # last signature observed
    done: dict[str, list] = cursor.get("done", {})  # signature a run was requested for
    now = time.time()
    existing = set(context.instance.get_dynamic_partitions(audio_files.name))

    new_keys, requests, waiting = [], [], []
    observed: dict[str, list] = {}
    candidates, rejected = valid_keys(storage.audio_dir)
    for candidate in candidates:
        key = candidate.key
        signature = _signature(candidate.size_bytes, candidate.mtime)
        observed[key] = signature
        settled = now - candidate.mtime >= SETTLE_SECONDS or seen.get(key) == signature
        if not settled:
            waiting.append(key)
            continue
        if done.get(key) == signature:
            continue
        if key not in existing:
            new_keys.append(key)
        requests.append(RunRequest(run_key=f"{key}@{signature[0]}:{signature[1]}", partition_key=key))
        done[key] = signature

    for exc in rejected:
        context.log.warning(str(exc))
    if waiting:
        context.log.info(f"Waiting for {len(waiting)} file(s) to finish writing: {', '.join(waiting[:10])}")
    cursor = {"seen": observed, "done": {k: v for k, v in done.items() if k in observed}}
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[audio_files.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(cursor, sort_keys=True),
        skip_reason=None
        if requests
        else SkipReason(
            f"No new or changed audio in {storage.audio_dir}"
            + (f"; {len(waiting)} still being written" if waiting else "")
        ),
    )


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    job_name="process_audio",
    description=(
        "Watches speakers.yaml and the library's voices: re-materialises what shows speaker names "
        "(speaker_transcript and after, never transcript or diarization) for each file whose names "
        "changed, and the diarization and after for each file whose speaker-count hints changed."
    ),
)
def speaker_names_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult | SkipReason:
    from autorag_dagster.core.speakers import SpeakersFileError, pending_renames

    try:
        plan = pending_renames(storage.layout, storage.speakers_file)
    except SpeakersFileError as exc:
        return SkipReason(f"speakers.yaml cannot be read: {exc}")
    # The cursor holds what was last requested per file, so a run in flight is not requested
    # again; an entry goes once the file shows what it should, so renaming back is requested too.
    cursor = json.loads(context.cursor) if context.cursor else {}
    wanted = {
        **{key: ("names", _digest(names)) for key, names in plan.names.items()},
        **{key: ("hints", _digest(hints)) for key, hints in plan.hints.items()},  # hints win: they include names
    }
    requests = []
    for key, (kind, digest) in sorted(wanted.items()):
        if cursor.get(key) == [kind, digest]:
            continue
        selection = DIARIZED_ASSETS if kind == "hints" else NAMED_ASSETS
        requests.append(
            RunRequest(
                partition_key=key,
                asset_selection=[AssetKey(a) for a in selection],
                tags={"autorag/why": f"speaker {kind} changed"},
            )
        )
    new_cursor = json.dumps({key: list(value) for key, value in sorted(wanted.items())})
    if not requests:
        return SensorResult(
            skip_reason=SkipReason(
                "Every file shows its speakers' current names."
                if not wanted
                else f"Waiting for the runs of {len(wanted)} file(s) already requested."
            ),
            cursor=new_cursor,
        )
    return SensorResult(run_requests=requests, cursor=new_cursor)
