"""Sensors. Runs are requested only once every required Ollama model is pulled."""

import hashlib
import json
import time
from pathlib import Path

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from autorag_dagster.core.audio import AudioDecodeError, probe
from autorag_dagster.core.folder_state import FolderState, FolderStateStore, StateMissing
from autorag_dagster.core.hashes import HashIndex
from autorag_dagster.core.keys import valid_keys
from autorag_dagster.defs.jobs import DIARIZED_ASSETS, NAMED_ASSETS, process_audio
from autorag_dagster.defs.library import tidy_library
from autorag_dagster.defs.partitions import audio_files, range_tags
from autorag_dagster.defs.resources import OllamaResource, StorageResource, readiness

# A file whose size and mtime did not change for this long is complete; a younger one must
# look the same on two consecutive ticks (it may still be copied or recorded).
SETTLE_SECONDS = 30.0


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


def _stored_sha(storage: StorageResource, key: str) -> str | None:
    try:
        return storage.layout.read_stored("audio", key).sha256
    except (OSError, ValueError):
        return None


def _gone_files(
    context: SensorEvaluationContext,
    storage: StorageResource,
    gone: list[str],
    settled_new: dict[str, list],
    hashes: HashIndex,
    *,
    nothing_found: bool,
    waiting: list[str],
) -> tuple[dict[str, str], list[str], list[str]]:
    """What became of the files that have results but left the folder: (moved: old key -> new key,
    deleted, kept). A new file with the content of a gone one (its stored sha256) is that file,
    moved; the others are deleted, or kept with AUTORAG_KEEP_DELETED. Nothing is decided while
    the folder holds no audio at all, or while files are still being written (a move in progress)."""
    if not gone:
        return {}, [], []
    if nothing_found:  # an empty or missing folder (an unmounted volume) must not empty the library
        context.log.warning(
            f"{storage.audio_dir} holds no audio, yet {len(gone)} file(s) have results: nothing is removed "
            "while the folder is empty (drop the partitions in the UI to remove them)."
        )
        return {}, [], []
    if waiting:
        context.log.info(f"{len(gone)} file(s) gone from the folder; waiting for the files being written (a move?).")
        return {}, [], []
    moved: dict[str, str] = {}
    by_hash = {sha: key for key in gone if (sha := _stored_sha(storage, key))}
    if by_hash and settled_new:
        for key in sorted(settled_new):
            old = by_hash.pop(hashes.sha256(Path(storage.audio_dir) / key), None)
            if old is not None:
                moved[old] = key
                context.log.info(f"{old} moved to {key} (same content): its results follow it, nothing is redone.")
    deleted = [k for k in gone if k not in moved]
    if deleted and storage.keep_deleted:
        context.log.info(
            f"Kept the results of {len(deleted)} file(s) deleted from the folder (AUTORAG_KEEP_DELETED): "
            + ", ".join(deleted[:20])
        )
        return moved, [], deleted
    return moved, deleted, []


def _cursor_state(context: SensorEvaluationContext, store: FolderStateStore) -> tuple[FolderState, str | None]:
    """The state the cursor names, and that name. A cursor of the older kind (the state itself) is read as is."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    if "state" not in cursor:
        return FolderState.from_dict(cursor), None
    try:
        return store.load(cursor["state"]), cursor["state"]
    except StateMissing as exc:
        context.log.warning(f"{exc}: every file in the folder is looked at again, as on a first tick.")
        return FolderState(), None


def _content_unchanged(storage: StorageResource, hashes: HashIndex, key: str) -> bool:
    """A processed file whose size or mtime changed still holds the content its results came from
    (touched, copied over with the same bytes): only this file is read to tell."""
    stored = _stored_sha(storage, key)
    return stored is not None and hashes.sha256(Path(storage.audio_dir) / key) == stored


def _run_request(context: SensorEvaluationContext, runs: dict[str, list]) -> RunRequest:
    """One run for every file to process, stage by stage (each model loads once): a partition
    range (``partitions.range_tags``: new files are added as partitions in one batch, at the end)."""
    keys = sorted(runs)
    run_key = "files:" + _digest(sorted(runs.items()))
    listed = f"{len(keys)} file(s): " + ", ".join(keys[:20]) + (", ..." if len(keys) > 20 else "")
    if len(keys) == 1:
        return RunRequest(run_key=run_key, partition_key=keys[0], job_name=process_audio.name)
    return RunRequest(
        run_key=run_key,
        job_name=process_audio.name,
        tags={**range_tags(context.instance, keys), "autorag/files": listed[:4000]},
    )


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    jobs=[process_audio, tidy_library],
    description=(
        "Watches AUTORAG_AUDIO_DIR: adds a partition per new audio file and requests one run for the new "
        "or changed files once their size is stable (a touched file whose content is unchanged is not run "
        "again); files that do not decode as audio are left out, named with the reason. Files deleted from "
        "the folder get a tidy_library run (their results removed, unless AUTORAG_KEEP_DELETED); a moved "
        "or renamed file keeps its results. Requests nothing while Ollama models are missing."
    ),
)
def audio_folder_sensor(
    context: SensorEvaluationContext, storage: StorageResource, ollama: OllamaResource
) -> SensorResult | SkipReason:
    skip = ollama_readiness_skip_reason(ollama)
    if skip is not None:
        return skip  # the cursor stays: nothing found now is forgotten

    # The per-file state lives in the data folder; the cursor only names its snapshot.
    store = FolderStateStore(storage.layout.folder_sensor_state)
    state, previous = _cursor_state(context, store)
    seen, done, left_out, tidied = state.seen, state.done, state.left_out, state.tidied
    now = time.time()
    existing = set(context.instance.get_dynamic_partitions(audio_files.name))
    hashes = HashIndex(storage.layout.source_hashes)

    runs: dict[str, list] = {}  # key -> signature, for the files to process
    waiting, settled_new, touched = [], {}, []
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
        if done.get(key) == signature or (key in left_out and left_out[key][0] == signature):
            continue
        if key in done and key in existing and _content_unchanged(storage, hashes, key):
            done[key] = signature
            touched.append(key)
            continue
        try:
            probe(Path(storage.audio_dir) / key)
        except AudioDecodeError as exc:
            left_out[key] = [signature, str(exc)]
            context.log.warning(f"Left out {key}: {exc}")
            continue
        left_out.pop(key, None)
        if key not in existing:
            settled_new[key] = signature
        runs[key] = signature
        done[key] = signature

    for exc in rejected:
        context.log.warning(str(exc))
    if waiting:
        context.log.info(f"Waiting for {len(waiting)} file(s) to finish writing: {', '.join(waiting[:10])}")
    if touched:
        context.log.info(
            f"{len(touched)} file(s) changed size or time but not content (read to tell: only those): "
            + ", ".join(touched[:10])
        )

    present = set(observed) | {exc.key for exc in rejected}
    gone = sorted(k for k in existing if k not in present and k not in tidied)
    moved, deleted, kept = _gone_files(
        context, storage, gone, settled_new, hashes, nothing_found=not observed, waiting=waiting
    )
    hashes.save()
    tidied += kept
    for new in moved.values():  # a moved file is not processed again: tidy_library gives it its results
        runs.pop(new, None)
        settled_new.pop(new)
    requests = [_run_request(context, runs)] if runs else []
    if moved or deleted:
        tidied += [*moved, *deleted]
        requests.append(
            RunRequest(
                run_key=f"tidy:{json.dumps({'deleted': deleted, 'moved': moved}, sort_keys=True)}"[:4000],
                job_name=tidy_library.name,
                run_config={"ops": {"tidy_files": {"config": {"deleted": deleted, "moved": moved}}}},
                tags={
                    "autorag/deleted": ", ".join(deleted)[:4000],
                    "autorag/moved": ", ".join(f"{a} -> {b}" for a, b in sorted(moved.items()))[:4000],
                },
            )
        )

    named = [f"{k} ({reason})" for k, (_, reason) in sorted(left_out.items()) if k in observed]
    state = FolderState(
        seen=observed,
        done={k: v for k, v in done.items() if k in observed},
        left_out={k: v for k, v in left_out.items() if k in observed},
        tidied=sorted(k for k in set(tidied) if k in existing and k not in present),
    )
    new_keys = sorted(settled_new)
    return SensorResult(
        run_requests=requests,
        # One request for every new file (the daemon adds them in one go; a run over several files
        # has added them already, in the same order, to make its range).
        dynamic_partitions_requests=[audio_files.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps({"state": store.save(state, previous)}),
        skip_reason=None
        if requests
        else SkipReason(
            f"No new or changed audio in {storage.audio_dir}"
            + (f"; {len(waiting)} still being written" if waiting else "")
            + (f". Left out, not audio: {'; '.join(named)}" if named else "")
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
