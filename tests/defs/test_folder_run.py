"""A folder runs as one Dagster run (each model loads once); a file that fails inside a step fails alone."""

from __future__ import annotations

import shutil

from autorag_dagster.runner import EmbeddedDagster
from autorag_dagster.settings import load_settings


def test_one_run_for_the_folder_and_a_failing_file_fails_alone(tmp_path, local_ollama, two_speakers, three_speakers):
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for key, source in (("a.wav", two_speakers), ("c.wav", three_speakers)):
        shutil.copy(source.path, audio_dir / key)
    settings = load_settings(
        ollama_base_url=local_ollama.url,
        audio_dir=audio_dir,
        data_dir=tmp_path / "data",
        num_ctx=2048,
        max_concurrency=4,
    )
    with EmbeddedDagster(settings) as dagster:
        # Partitions added in another order earlier: the folder's files are not neighbours.
        dagster.register(["a.wav", "other.wav", "b-gone.wav", "c.wav"])
        # b-gone.wav is a partition whose file vanished: its `audio` step fails, the others go on.
        outcome = dagster.run_folder(["a.wav", "b-gone.wav", "c.wav"])

    assert outcome.ok == {"a.wav": True, "b-gone.wav": False, "c.wav": True}
    assert "no such file" in outcome.errors["b-gone.wav"]
    # Run 1: all three (audio fails for b-gone.wav); run 2: a.wav and c.wav on from there, in one
    # run; run 3: b-gone.wav alone. Never one run per healthy file.
    assert len(outcome.results) == 3
    assert outcome.model_loads()["whisper"] == 1 and outcome.model_loads()["diarizer"] == 1
    assert outcome.model_loads()["embedder"] == 1
    loads = [e for e in local_ollama.events(kind="load") if e["model"].startswith("gemma4")]
    assert len(loads) == 1
    ranges = [r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in outcome.results]
    assert ranges[:2] == ["a.wav", "a.wav"]  # the first two runs cover a range of files
