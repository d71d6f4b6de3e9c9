"""The core: audio, transcription, diarization, alignment, topics, storage, viz.

Nothing under ``core`` imports Dagster; the Dagster layer in ``autorag_dagster.defs`` calls in here.
"""
