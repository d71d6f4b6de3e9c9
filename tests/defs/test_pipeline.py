"""The whole per-file graph through real Dagster runs against the local Ollama-compatible server."""

from __future__ import annotations

import shutil

import ollama
from dagster import DagsterEventType

from autorag_dagster.core.search import search
from autorag_dagster.core.store import SegmentStore
from tests.defs.test_speech_assets import failure_text

CHECKS = {
    "audio_is_decoded", "transcript_words_valid", "diarization_turns_valid", "speaker_words_attributed",
    "topic_tree_tiles", "embeddings_rows_valid", "viz_page_complete",
}


def materialised(result) -> dict:
    return {
        e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
        for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }


def test_every_asset_and_check_then_a_rerun_without_llm_calls(pipeline, two_speakers):
    shutil.copy(two_speakers.path, pipeline.audio_dir / "garden meeting.wav")
    pipeline.add_files("garden meeting.wav")
    server = pipeline.server

    first = pipeline.run("garden meeting.wav")
    assert first.success, failure_text(first)
    evaluations = first.get_asset_check_evaluations()
    assert {c.check_name for c in evaluations} == CHECKS
    assert all(c.passed for c in evaluations), [(c.check_name, c.description) for c in evaluations if not c.passed]

    meta = materialised(first)
    assert set(meta) >= {"audio", "transcript", "diarization", "speaker_transcript", "topic_tree", "embeddings", "viz"}
    assert meta["topic_tree"]["llm_loads"].value == 1 and meta["topic_tree"]["llm_reloads"].value == 0
    assert meta["topic_tree"]["llm_calls"].value >= 3
    assert "preview" in meta["viz"]

    # The LLM was loaded once, and evicted before the first embed request.
    events = server.events()
    llm_loads = [e for e in events if e["kind"] == "load" and e["model"].startswith("gemma4")]
    assert len(llm_loads) == 1
    llm_unload = next(e for e in events if e["kind"] == "unload" and e["model"].startswith("gemma4"))
    first_embed = next(e for e in events if e["kind"] == "request_start" and e.get("endpoint") == "embed")
    assert llm_unload["seq"] < first_embed["seq"]

    store = SegmentStore.for_model(str(pipeline.data_dir / "lancedb"), "nomic-embed-text")
    rows = store.count("garden meeting.wav")
    assert rows == meta["embeddings"]["rows"].value > 0

    # Rerun: zero LLM calls (answer cache), and no duplicate rows.
    server.clear_events()
    second = pipeline.run("garden meeting.wav")
    assert second.success, failure_text(second)
    assert not [e for e in server.events() if e.get("endpoint") == "chat"]
    assert materialised(second)["topic_tree"]["llm_calls"].value == 0
    assert store.count("garden meeting.wav") == rows
    assert all(c.passed for c in second.get_asset_check_evaluations())

    # The index maintenance makes the table searchable with full text and hybrid search.
    index_run = pipeline.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={__import__("dagster").AssetKey("lancedb_index")}
    ).execute_in_process(instance=pipeline.instance)
    assert index_run.success
    client = ollama.Client(server.url)
    hits = search(store, "trees planted near the river", embed=lambda t: client.embed("nomic-embed-text", t).embeddings, k=3)
    assert hits and hits[0].file == "garden meeting.wav"
