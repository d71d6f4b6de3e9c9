"""A run over many files processes them stage by stage: every model loads once per run."""

from __future__ import annotations

import shutil

from dagster import DagsterEventType

from tests.support.dagster_runs import errors_passed, failure_text, run_range


def metadata_of(result, asset: str):
    return next(
        e.step_materialization_data.materialization.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION and e.asset_key.path[-1] == asset
    )


def llm_loads(server) -> list[dict]:
    return [e for e in server.events(kind="load") if e["model"].startswith("gemma4")]


def test_three_files_in_one_run_load_each_model_once(pipeline, two_speakers, three_speakers):
    keys = ["a.wav", "b.wav", "c.wav"]
    for key, source in zip(keys, (two_speakers, three_speakers, two_speakers)):
        shutil.copy(source.path, pipeline.audio_dir / key)
    pipeline.add_files(*keys)

    one_run = run_range(pipeline, keys)
    assert one_run.success, failure_text(one_run)
    materialised = {
        (e.asset_key.path[-1], e.partition)
        for e in one_run.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert {("topic_tree", k) for k in keys} <= materialised and {("viz", k) for k in keys} <= materialised

    # The LLM: one load for three files, one eviction after the last, before the first embed call.
    events = pipeline.server.events()
    assert len(llm_loads(pipeline.server)) == 1
    llm_unloads = [e for e in events if e["kind"] == "unload" and e["model"].startswith("gemma4")]
    assert len(llm_unloads) == 1
    last_chat = max(e["seq"] for e in events if e["kind"] == "request_end" and e.get("endpoint") == "chat")
    first_embed = min(e["seq"] for e in events if e["kind"] == "request_start" and e.get("endpoint") == "embed")
    assert last_chat < llm_unloads[0]["seq"] < first_embed

    # Whisper and the diarizer: one acquire each in the GPU timeline of their step.
    for asset, tenant in (("transcript", "whisper"), ("diarization", "diarizer"), ("topic_tree", "llm")):
        timeline = metadata_of(one_run, asset)["gpu_timeline"].value
        assert timeline.count(f"| acquire | {tenant} |") == 1, timeline
    assert metadata_of(one_run, "topic_tree")["llm_loads"].value == 1
    assert errors_passed(one_run)

    # File by file, the LLM loads once per file (the answers are cached, so use new files).
    pipeline.server.clear_events()
    shutil.copy(three_speakers.path, pipeline.audio_dir / "d.wav")
    shutil.copy(two_speakers.path, pipeline.audio_dir / "e.wav")
    pipeline.add_files("d.wav", "e.wav")
    shutil.rmtree(pipeline.data_dir / "cache")
    for key in ("d.wav", "e.wav"):
        assert pipeline.run(key).success
    assert len(llm_loads(pipeline.server)) == 2
