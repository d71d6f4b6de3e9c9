"""Jobs: ``process_audio`` materialises every per-file asset for one or many audio files."""

from dagster import AssetSelection, define_asset_job

from autorag_dagster.defs.partitions import audio_files

MAINTENANCE_GROUP = "maintenance"

process_audio = define_asset_job(
    "process_audio",
    selection=AssetSelection.all() - AssetSelection.groups(MAINTENANCE_GROUP),
    partitions_def=audio_files,
    description="Every per-file asset (audio to viz) with its checks, for the files of the run.",
)
