"""The whole per-file graph through real Dagster runs against the local Ollama-compatible server."""

from __future__ import annotations

import shutil

import ollama
from dagster import DagsterEventType

from autorag_dagster.core.search import search
from autorag_dagster.core.store import SegmentStore
from tests.support.dagster_runs import errors_passed, failure_text

CHECKS = {
    "audio_is_decoded",
    "transcript_words_valid",
    "diarization_turns_valid",
    "speaker_words_attributed",
    "topic_tree_tiles",
    "topic_tree_quality",
    "embeddings_rows_valid",
    "viz_page_complete",
}


def materialised(result) -> dict:
    return {
        e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }


def test_every_asset_and_check_then_a_rerun_without_llm_calls(pipeline, two_speakers):
    shutil.copy(two_speakers.path, pipeline.audio_dir / "garden meeting.wav")
    pipeline.add_files("garden meeting.wav")
    server = pipeline.server

    first = pipeline.run("garden meeting.wav")
    assert first.success, failure_text(first)
    evaluations = first.get_asset_check_evaluations()
    assert {c.check_name for c in evaluations} == CHECKS
    errors = [c for c in evaluations if c.severity.value == "ERROR"]
    assert all(c.passed for c in errors), [(c.check_name, c.description) for c in errors if not c.passed]

    meta = materialised(first)
    assert set(meta) >= {"audio", "transcript", "diarization", "speaker_transcript", "topic_tree", "embeddings", "viz"}
    assert meta["topic_tree"]["llm_loads"].value == 1 and meta["topic_tree"]["llm_reloads"].value == 0
    assert meta["topic_tree"]["llm_calls"].value >= 3
    assert "preview" in meta["viz"]

    # The tree's exports, listed in its metadata: the chapter files and the note.
    exports = meta["topic_tree"]["exports"].value
    folder = pipeline.data_dir / "files"
    [file_dir] = [p for p in folder.iterdir() if p.is_dir()]
    for name in ("topics.json", "outline.md", "chapters.vtt", "chapters.json", "chapters.txt", "chapters.ffmetadata"):
        assert (file_dir / name).is_file() and str((file_dir / name).resolve()) in exports, name
    [note] = list((pipeline.data_dir / "notes").glob("*.md"))
    assert str(note.resolve()) in exports and note.stem == file_dir.name
    assert (file_dir / "chapters.txt").read_text().startswith("00:00 ")
    assert "## Outline" in note.read_text()

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
    assert errors_passed(second)

    # The index maintenance makes the table searchable with full text and hybrid search.
    index_run = (
        pipeline.defs.resolve_implicit_global_asset_job_def()
        .get_subset(asset_selection={__import__("dagster").AssetKey("lancedb_index")})
        .execute_in_process(instance=pipeline.instance)
    )
    assert index_run.success
    client = ollama.Client(server.url)
    hits = search(
        store, "trees planted near the river", embed=lambda t: client.embed("nomic-embed-text", t).embeddings, k=3
    )
    assert hits and hits[0].file == "garden meeting.wav"


def test_a_broken_store_fails_the_embeddings_check(pipeline, two_speakers):
    """Rows duplicated behind the pipeline's back: the check (run alone) fails and says why."""
    from dagster import AssetCheckKey, AssetKey

    shutil.copy(two_speakers.path, pipeline.audio_dir / "a.wav")
    pipeline.add_files("a.wav")
    assert pipeline.run("a.wav").success
    store = SegmentStore.for_model(str(pipeline.data_dir / "lancedb"), "nomic-embed-text")
    table = store.table()
    table.add(table.search().where("file_key = 'a.wav'").limit(1).to_arrow())  # a duplicate row

    job = pipeline.defs.resolve_job_def("process_audio").get_subset(
        asset_selection=set(), asset_check_selection={AssetCheckKey(AssetKey("embeddings"), "embeddings_rows_valid")}
    )
    result = job.execute_in_process(partition_key="a.wav", instance=pipeline.instance, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "duplicate" in evaluation.description and "a.wav" in evaluation.description


def test_a_model_that_is_not_pulled_fails_the_topic_tree_legibly(tmp_path, local_ollama_factory, two_speakers):
    from dagster import DagsterInstance

    from autorag_dagster.defs import build_definitions
    from autorag_dagster.defs.partitions import audio_files
    from autorag_dagster.settings import load_settings

    server = local_ollama_factory(pulled=["nomic-embed-text"])
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    shutil.copy(two_speakers.path, audio_dir / "a.wav")
    settings = load_settings(ollama_base_url=server.url, audio_dir=audio_dir, data_dir=tmp_path / "data")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(audio_files.name, ["a.wav"])
        result = (
            build_definitions(settings)
            .resolve_job_def("process_audio")
            .execute_in_process(partition_key="a.wav", instance=instance, raise_on_error=False)
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert failure.step_key == "topic_tree"
    message = failure.event_specific_data.error.message
    assert "gemma4:latest" in message and "pull" in message and server.url in message
    assert failure.event_specific_data.error.cause is None  # a legible failure, not a chained traceback
    # what came before is kept
    done = {e.asset_key.path[-1] for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION}
    assert {"audio", "transcript", "diarization", "speaker_transcript"} <= done
