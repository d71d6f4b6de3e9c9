"""One dynamic partition per audio file, keyed by its path relative to the audio root."""

from dagster import BackfillPolicy, DynamicPartitionsDefinition

audio_files = DynamicPartitionsDefinition(name="audio_files")

# A backfill over many files runs as one run: each stage handles every file before the next
# stage starts, so each model (Whisper, diarizer, LLM, embedder) loads once per run.
single_run = BackfillPolicy.single_run()
