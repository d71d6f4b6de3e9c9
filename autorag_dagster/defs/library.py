"""``tidy_library``: what is stored for files that left the audio folder is removed, and what is
stored for files that moved (same content, new path) follows them. The folder sensor requests it;
each run names its files in its tags and logs what it removed or moved."""

from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    Config,
    OpExecutionContext,
    job,
    load_assets_from_modules,
    op,
)

from autorag_dagster.core.keys import InvalidKeyError, validate_key
from autorag_dagster.core.library import move_file, remove_file
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import StorageResource

TIDY_JOB = "tidy_library"
CODE_VERSION_TAG = "dagster/code_version"


class TidyConfig(Config):
    deleted: list[str] = []
    moved: dict[str, str] = {}  # old key -> new key


def _per_file_assets() -> dict[AssetKey, str | None]:
    """Each per-file asset's key and code version."""
    from autorag_dagster.defs.assets import search, speech, topics, viz

    versions: dict[AssetKey, str | None] = {}
    for definition in load_assets_from_modules([speech, topics, search, viz]):
        if isinstance(definition, AssetsDefinition) and definition.partitions_def == audio_files:
            versions |= {key: definition.code_versions_by_key.get(key) for key in definition.keys}
    return versions


@op(out={}, description="Removes what is stored for deleted files; moves what is stored for moved ones.")
def tidy_files(context: OpExecutionContext, config: TidyConfig, storage: StorageResource) -> Iterator:
    layout, instance = storage.layout, context.instance
    partitions = set(instance.get_dynamic_partitions(audio_files.name))
    assets = _per_file_assets()
    for old, new in sorted(config.moved.items()):
        try:
            source = validate_key(storage.audio_dir, new)
        except InvalidKeyError as exc:
            context.log.warning(f"Not moved: {exc}")
            continue
        done = move_file(layout, old, new, source)
        context.log.info(f"Moved the results of {old} to {new} (same content): {done.summary()}")
        if new not in partitions:
            instance.add_dynamic_partitions(audio_files.name, [new])
        for key, version in sorted(assets.items(), key=lambda item: item[0].to_user_string()):
            if layout.stored_path(key.path[-1], new).exists():
                yield AssetMaterialization(
                    asset_key=key,
                    partition=new,
                    description=f"Carried over from {old}: the same content under a new path.",
                    metadata={"moved_from": old, "stored_at": str(layout.stored_path(key.path[-1], new))},
                    tags={CODE_VERSION_TAG: version} if version else None,
                )
        if old in partitions:
            instance.delete_dynamic_partition(audio_files.name, old)
    for key in sorted(config.deleted):
        if (Path(storage.audio_dir) / key).exists():
            context.log.info(f"{key} is in the audio folder again: its results are kept.")
            continue
        done = remove_file(layout, key)
        if key in partitions:
            instance.delete_dynamic_partition(audio_files.name, key)
        context.log.info(f"Removed {key} (deleted from the audio folder): {done.summary()}; partition dropped.")


@job(
    name=TIDY_JOB,
    description=(
        "The library follows the audio folder: removes the LanceDB rows, exports, page, stored values and "
        "partition of deleted files (unless AUTORAG_KEEP_DELETED), and gives moved files their results."
    ),
)
def tidy_library():
    tidy_files()
