"""Voices across files and names through real Dagster runs: a rename re-runs only what shows names."""

from __future__ import annotations

import json

import ollama
from dagster import DagsterEventType, build_sensor_context

from autorag_dagster.core.search import search
from autorag_dagster.core.speakers import SpeakerNames, read_speakers, set_identity_name, speaker_rows
from autorag_dagster.core.store import SegmentStore
from autorag_dagster.core.types import Diarization, SpeakerTranscript
from autorag_dagster.defs.jobs import DIARIZED_ASSETS, NAMED_ASSETS
from autorag_dagster.defs.resources import StorageResource
from autorag_dagster.defs.sensors import speaker_names_sensor
from autorag_dagster.runner import materialized, succeeded
from tests.support.dagster_runs import failure_text
from tests.support.voices_library import LIBRARY_SCRIPTS, introductions, suggested_names, true_voices, write_library

FILES = ["budget.wav", "garden.wav"]  # alice speaks in both, and says her name in garden.wav


def materialised_assets(results) -> dict[str, set[str]]:
    done: dict[str, set[str]] = {}
    for result in results:
        for asset, keys in materialized(result).items():
            done.setdefault(asset, set()).update(keys)
    return done


def started_steps(results) -> set[str]:
    return {e.step_key for r in results for e in r.all_events if e.event_type == DagsterEventType.STEP_START}


def test_voices_then_a_rename_rematerialises_only_what_shows_names(pipeline, tmp_path_factory):
    library = write_library(pipeline.audio_dir, cache=tmp_path_factory.mktemp("library-cache"))
    for name in set(library) - set(FILES):
        (pipeline.audio_dir / name).unlink()
    dagster = pipeline.dagster
    pipeline.add_files(*FILES)

    first = dagster.run_files(FILES)
    assert succeeded(first), failure_text(first)
    voices = dagster.voices()
    assert voices.success, failure_text(voices)
    [meta] = [
        e.step_materialization_data.materialization.metadata
        for e in voices.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]
    assert meta["identities"].value == 3 and meta["files"].value == 2
    assert "VOICE_0001" in meta["table"].value

    registry = pipeline.data_dir / "voices" / "registry.json"
    shared = [i for i in json.loads(registry.read_text())["identities"] if len({m["file"] for m in i["members"]}) == 2]
    assert len(shared) == 1, "alice's voice is one identity in both files"
    alice = shared[0]["id"]

    # The names the files' words suggest, per identity as `autorag speakers list` shows them: each
    # introduction for the local speaker and the identity of the voice that says it, nothing else.
    storage = StorageResource(audio_dir=str(pipeline.audio_dir), data_dir=str(pipeline.data_dir))
    truth = true_voices(storage.layout.stored_values("diarization", Diarization), library)
    transcripts = storage.layout.stored_values("speaker_transcript", SpeakerTranscript)
    rows = speaker_rows(storage.layout.read_voice_registry(), SpeakerNames(), transcripts)
    said = sorted((key, name, voice, voice) for key in FILES for voice, name in introductions(LIBRARY_SCRIPTS[key]))
    assert said and len({key for key, *_ in said}) < len(FILES)  # a file with an introduction, one without
    assert sorted(suggested_names(rows, truth)) == said

    # The files learn their voice IDs: one run of the assets that show names, nothing before them.
    relabel = dagster.apply_speakers()
    assert len(relabel) == 1 and succeeded(relabel[0]), failure_text(relabel[0])
    assert set(materialised_assets(relabel)) == set(NAMED_ASSETS)
    assert dagster.index().success
    vtt = (pipeline.data_dir / "files").glob("*/speaker_transcript.vtt")
    assert all(f"<v {alice}>" in path.read_text() for path in vtt)
    assert dagster.apply_speakers() == []  # nothing left to do

    store = SegmentStore.for_model(str(pipeline.data_dir / "lancedb"), "nomic-embed-text")
    client = ollama.Client(pipeline.server.url)

    def embed(texts):
        return client.embed("nomic-embed-text", texts).embeddings

    assert not search(store, "trees and budget", embed=embed, k=5, speakers=["Ana"], mode="vector")

    # The rename: speakers.yaml gets the name; the sensor asks for the named assets of both files.
    speakers_file = pipeline.audio_dir / "speakers.yaml"
    speakers_file.write_text('# my notes\n"garden.wav":\n  num_speakers: 2\n')
    set_identity_name(speakers_file, alice, "Ana")
    assert read_speakers(speakers_file).identities == {alice: "Ana"}
    assert read_speakers(speakers_file).hints_for("garden.wav").num_speakers == 2  # the rest is kept

    with build_sensor_context(instance=pipeline.instance, resources={"storage": storage}) as context:
        tick = speaker_names_sensor(context)
    requested = {(r.partition_key, tuple(k.path[-1] for k in r.asset_selection)) for r in tick.run_requests}
    # garden.wav's hint (2 speakers) is what the diarizer found anyway, but it is a new input:
    # that file's diarization is asked for; budget.wav only needs its names.
    assert requested == {("budget.wav", NAMED_ASSETS), ("garden.wav", DIARIZED_ASSETS)}
    with build_sensor_context(
        instance=pipeline.instance, resources={"storage": storage}, cursor=tick.cursor
    ) as context:
        again = speaker_names_sensor(context)
    assert not again.run_requests  # already requested: not twice while the runs are on their way

    # Ana everywhere; budget.wav's other speaker gets a long name in that file only.
    long_name = "Dr. Bartholomew Featherstonehaugh-Smythe of the Finance Committee"
    budget_other = next(
        s
        for s in ("SPEAKER_00", "SPEAKER_01")
        if s not in {m["speaker"] for m in shared[0]["members"] if m["file"] == "budget.wav"}
    )
    speakers_file.write_text(f'{alice}: Ana\n"budget.wav":\n  {budget_other}: {long_name}\n')
    rename = dagster.apply_speakers()
    assert len(rename) == 1 and succeeded(rename[0]), failure_text(rename[0])
    done = materialised_assets(rename)
    assert "transcript" not in done and "diarization" not in done and "audio" not in done
    assert not started_steps(rename) & {"audio", "transcript", "diarization"}
    assert done["viz"] == set(FILES)
    assert dagster.index().success

    # The page, the exports and the search results show the name.
    for key in FILES:
        folder = next(p for p in (pipeline.data_dir / "files").iterdir() if p.name.startswith(key.split(".")[0]))
        assert "<v Ana>" in (folder / "speaker_transcript.vtt").read_text()
        assert "Ana: " in (folder / "speaker_transcript.srt").read_text()
        assert " Ana " in (folder / "speakers.rttm").read_text()
        assert alice not in (folder / "speakers.rttm").read_text()
    pages = list((pipeline.data_dir / "viz").glob("*.html"))
    assert sum("Ana" in page.read_text() for page in pages) >= 2
    assert sum(long_name in page.read_text() for page in pages) >= 1
    assert search(store, "heating system budget", embed=embed, k=3, speakers=[long_name], mode="vector")
    hits = search(store, "trees and budget", embed=embed, k=5, speakers=["Ana"], mode="vector")
    assert hits and {h.file for h in hits} <= set(FILES) and all("Ana" in h.speakers for h in hits)


def test_voices_materialise_themselves_after_diarizations_land(tmp_path):
    from dagster import (
        AssetKey,
        AssetMaterialization,
        AssetSelection,
        evaluate_automation_conditions,
        instance_for_test,
    )

    from autorag_dagster.defs import build_definitions
    from autorag_dagster.defs.partitions import audio_files
    from autorag_dagster.settings import load_settings

    defs = build_definitions(load_settings(audio_dir=tmp_path / "audio", data_dir=tmp_path / "data"))
    voices = AssetSelection.assets("voices")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(audio_files.name, ["a.wav", "b.wav"])
        tick = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=voices)
        assert tick.total_requested == 0
        # One file diarized, the other not yet: the identities are rebuilt anyway.
        instance.report_runless_asset_event(AssetMaterialization(AssetKey("diarization"), partition="a.wav"))
        tick = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=voices, cursor=tick.cursor)
        assert tick.total_requested == 1
        tick = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=voices, cursor=tick.cursor)
        assert tick.total_requested == 0  # handled
        instance.report_runless_asset_event(AssetMaterialization(AssetKey("diarization"), partition="b.wav"))
        tick = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=voices, cursor=tick.cursor)
        assert tick.total_requested == 1


def test_the_names_file_is_observed_with_its_hash_as_data_version(tmp_path):
    from dagster import AssetKey, DagsterInstance

    from autorag_dagster.core.speakers import digest
    from autorag_dagster.defs import build_definitions
    from autorag_dagster.settings import load_settings

    defs = build_definitions(load_settings(audio_dir=tmp_path, data_dir=tmp_path / "data"))
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={AssetKey("speaker_names")})

    def observed() -> str:
        result = job.execute_in_process(instance=DagsterInstance.ephemeral())
        [event] = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
        return event.event_specific_data.asset_observation.tags["dagster/data_version"]

    assert observed() == "absent"
    (tmp_path / "speakers.yaml").write_text("VOICE_0001: Ana\n")
    assert observed() == digest(tmp_path / "speakers.yaml") != "absent"
