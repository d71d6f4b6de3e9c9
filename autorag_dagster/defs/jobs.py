"""Jobs: ``process_audio`` materialises every per-file asset for one or many audio files; the
selections a change of speaker names or hints re-materialises."""

from dagster import AssetSelection, define_asset_job

from autorag_dagster.defs.partitions import audio_files

MAINTENANCE_GROUP = "maintenance"
LIBRARY_GROUP = "library"  # unpartitioned assets over every file (the voices)

# What shows speaker names: re-materialised for a file when its names change (never Whisper or
# the diarizer). Everything downstream of ``speaker_transcript``.
NAMED_ASSETS = ("speaker_transcript", "topic_tree", "embeddings", "viz")
# What comes before the voices: the main job runs these, then ``voices``, then ``NAMED_ASSETS``.
SPEECH_ASSETS = ("audio", "transcript", "diarization")
# What a file's diarizer hints change: the diarization and everything after it.
DIARIZED_ASSETS = ("diarization", *NAMED_ASSETS)

process_audio = define_asset_job(
    "process_audio",
    selection=AssetSelection.all() - AssetSelection.groups(MAINTENANCE_GROUP, LIBRARY_GROUP),
    partitions_def=audio_files,
    description="Every per-file asset (audio to viz) with its checks, for the files of the run.",
)
