"""The library follows the audio folder, by real Dagster runs: the folder sensor evaluated over a
real instance, the runs it requests executed there (the per-file job and ``tidy_library``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import ollama
import pytest
from dagster import DagsterEventType, SensorResult, build_sensor_context

from autorag_dagster.core.hashes import HashIndex
from autorag_dagster.core.search import search
from autorag_dagster.core.store import SegmentStore
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.defs.schedules import stale_reasons
from autorag_dagster.defs.sensors import audio_folder_sensor
from autorag_dagster.layout import DataLayout
from tests.support.dagster_runs import Pipeline, covered_keys, failure_text
from tests.support.speech import convert

EMBED = "nomic-embed-text"
QUERY = "trees planted near the river"
OLD = time.time() - 3600


def settle(path: Path) -> Path:
    os.utime(path, (OLD, OLD))
    return path


def tick(pipeline: Pipeline, cursor: str | None = None, *, keep_deleted: bool = False):
    resources = {
        "storage": StorageResource(
            audio_dir=str(pipeline.audio_dir), data_dir=str(pipeline.data_dir), keep_deleted=keep_deleted
        ),
        "ollama": OllamaResource(ollama_base_url=pipeline.server.url),
    }
    with build_sensor_context(instance=pipeline.instance, cursor=cursor, resources=resources) as context:
        result = audio_folder_sensor(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests:
            pipeline.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def requests(result, job: str) -> list:
    return [r for r in result.run_requests if r.job_name == job] if isinstance(result, SensorResult) else []


def run_tidy(pipeline: Pipeline, request):
    job = pipeline.defs.resolve_job_def("tidy_library")
    result = job.execute_in_process(
        run_config=request.run_config, instance=pipeline.instance, tags=request.tags, raise_on_error=False
    )
    assert result.success, failure_text(result)
    return result


def partitions(pipeline: Pipeline) -> set[str]:
    return set(pipeline.instance.get_dynamic_partitions(audio_files.name))


def found_files(pipeline: Pipeline) -> set[str]:
    client = ollama.Client(host=pipeline.server.url, timeout=60)
    store = SegmentStore.for_model(str(pipeline.data_dir / "lancedb"), EMBED)
    hits = search(store, QUERY, embed=lambda t: client.embed(EMBED, t).embeddings, k=20, mode="vector")
    return {hit.file for hit in hits}


def test_a_renamed_file_keeps_its_results_and_a_deleted_one_is_removed(pipeline: Pipeline, two_speakers):
    layout = DataLayout(pipeline.data_dir)
    settle(shutil.copy(two_speakers.path, pipeline.audio_dir / "garden.wav"))
    first = tick(pipeline)
    [process] = requests(first, "process_audio")
    assert process.partition_key == "garden.wav"
    run = pipeline.run("garden.wav")
    assert run.success, failure_text(run)
    assert found_files(pipeline) == {"garden.wav"}
    transcript_before = layout.read_stored("transcript", "garden.wav")
    assert layout.note_path("garden.wav").exists()

    # Renamed and moved into a folder: the same content, recognised by its hash.
    (pipeline.audio_dir / "2024").mkdir()
    (pipeline.audio_dir / "garden.wav").rename(pipeline.audio_dir / "2024" / "garden meeting.wav")
    new = "2024/garden meeting.wav"
    second = tick(pipeline, first.cursor)
    assert requests(second, "process_audio") == []  # nothing is transcribed again
    [tidy] = requests(second, "tidy_library")
    assert tidy.run_config["ops"]["tidy_files"]["config"] == {"deleted": [], "moved": {"garden.wav": new}}
    moved = run_tidy(pipeline, tidy)
    steps = {e.step_key for e in moved.all_events if e.event_type == DagsterEventType.STEP_START}
    assert steps == {"tidy_files"}
    carried = {
        e.asset_key.path[-1]: e.step_materialization_data.materialization
        for e in moved.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert {"audio", "transcript", "diarization", "speaker_transcript", "topic_tree", "embeddings", "viz"} <= set(
        carried
    )
    assert carried["transcript"].partition == new
    assert carried["transcript"].metadata["moved_from"].value == "garden.wav"
    assert partitions(pipeline) == {new}
    transcript_after = layout.read_stored("transcript", new)
    assert transcript_after.key == new and transcript_after.words == transcript_before.words
    audio = layout.read_stored("audio", new)
    assert audio.key == new and audio.path == str((pipeline.audio_dir / new).resolve())
    assert Path(audio.pcm_path).exists() and Path(audio.pcm_path).is_relative_to(layout.file_dir(new))
    assert not layout.file_dir("garden.wav").exists()
    assert layout.note_path(new).exists() and not layout.note_path("garden.wav").exists()
    assert (layout.viz_dir / f"{new}.html").exists() and not (layout.viz_dir / "garden.wav.html").exists()
    assert "garden.wav.html" not in layout.viz_index.read_text(encoding="utf-8")
    assert found_files(pipeline) == {new}
    # The next tick asks for nothing: the moved file counts as done.
    third = tick(pipeline, second.cursor)
    assert isinstance(third, SensorResult) and third.run_requests == []
    # The nightly backfill finds it up to date too: the carried materialisations name the code versions.
    assert carried["transcript"].tags["dagster/code_version"] == "transcript-1"
    storage = StorageResource(audio_dir=str(pipeline.audio_dir), data_dir=str(pipeline.data_dir))
    evaluation = SimpleNamespace(instance=pipeline.instance, repository_def=pipeline.defs.get_repository_def())
    assert stale_reasons(evaluation, storage, [new], HashIndex(layout.source_hashes)) == {}

    # Deleted from the folder: its rows, exports, page and partition go in a run of their own.
    (pipeline.audio_dir / new).unlink()
    (pipeline.audio_dir / "notes.txt").write_text("the folder is not empty")
    settle(convert(two_speakers.path, pipeline.audio_dir / "other.flac"))  # another file stays
    fourth = tick(pipeline, third.cursor)
    [tidy] = requests(fourth, "tidy_library")
    assert tidy.run_config["ops"]["tidy_files"]["config"] == {"deleted": [new], "moved": {}}
    assert tidy.tags["autorag/deleted"] == new
    removed = run_tidy(pipeline, tidy)
    logged = "\n".join(entry.user_message for entry in pipeline.instance.all_logs(removed.run_id))  # the UI's log
    assert f"Removed {new}" in logged
    assert new not in partitions(pipeline)
    assert not layout.file_dir(new).exists() and not layout.note_path(new).exists()
    assert not (layout.viz_dir / f"{new}.html").exists()
    store = SegmentStore.for_model(str(pipeline.data_dir / "lancedb"), EMBED)
    assert store.count(new) == 0
    assert new not in found_files(pipeline)  # search no longer finds it
    # The deletion is requested once.
    fifth = tick(pipeline, fourth.cursor)
    assert requests(fifth, "tidy_library") == []


def test_the_keep_setting_keeps_what_a_deleted_file_had(pipeline: Pipeline, two_speakers):
    layout = DataLayout(pipeline.data_dir)
    settle(shutil.copy(two_speakers.path, pipeline.audio_dir / "archive.wav"))
    settle(shutil.copy(two_speakers.path, pipeline.audio_dir / "stays.wav"))
    first = tick(pipeline, keep_deleted=True)
    [process] = requests(first, "process_audio")  # one run for both
    assert covered_keys(pipeline.instance, process) == ["archive.wav", "stays.wav"]
    run = pipeline.run("archive.wav", ["audio"])
    assert run.success, failure_text(run)
    stored = layout.stored_path("audio", "archive.wav")
    assert stored.exists()

    (pipeline.audio_dir / "archive.wav").unlink()
    second = tick(pipeline, first.cursor, keep_deleted=True)
    assert requests(second, "tidy_library") == []
    assert "archive.wav" in partitions(pipeline) and stored.exists()
    # Without the setting the same deletion is tidied.
    third = tick(pipeline, None, keep_deleted=False)
    [tidy] = requests(third, "tidy_library")
    assert tidy.run_config["ops"]["tidy_files"]["config"]["deleted"] == ["archive.wav"]


def test_an_empty_folder_does_not_empty_the_library(pipeline: Pipeline, two_speakers):
    settle(shutil.copy(two_speakers.path, pipeline.audio_dir / "a.wav"))
    first = tick(pipeline)
    (pipeline.audio_dir / "a.wav").unlink()  # an unmounted volume looks like this
    second = tick(pipeline, first.cursor)
    assert requests(second, "tidy_library") == []
    assert "a.wav" in partitions(pipeline)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def test_containers_ffmpeg_reads_are_accepted_and_what_is_not_audio_is_named(pipeline: Pipeline, two_speakers):
    folder = pipeline.audio_dir
    convert(two_speakers.path, folder / "talk.m4a", "-c:a", "aac")
    convert(two_speakers.path, folder / "talk.webm", "-c:a", "libopus")
    # a video with a sound track
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-i", str(two_speakers.path),
        "-shortest", "-c:v", "mpeg4", "-c:a", "aac", str(folder / "talk.mkv"),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-t", "1", "-c:v", "mpeg4", str(folder / "silent.mov"))
    (folder / "notes.aac").write_text("these are notes, not audio\n")
    for path in folder.iterdir():
        settle(path)

    first = tick(pipeline)
    [process] = requests(first, "process_audio")
    assert covered_keys(pipeline.instance, process) == ["talk.m4a", "talk.mkv", "talk.webm"]
    assert partitions(pipeline) == {"talk.m4a", "talk.mkv", "talk.webm"}
    # What is left out is named with its reason, tick after tick.
    second = tick(pipeline, first.cursor)
    assert isinstance(second, SensorResult) and second.run_requests == []
    message = second.skip_reason.skip_message
    assert "silent.mov (" in message and "no audio stream" in message
    assert "notes.aac (" in message
    # A video container's sound track goes through the graph (decoded as audio).
    run = pipeline.run("talk.mkv", ["audio"])
    assert run.success, failure_text(run)


@pytest.mark.parametrize("name", ["a.m4b", "b.wma", "c.mkv", "d.mov", "e.opus", "f.aac"])
def test_the_extensions_of_containers_ffmpeg_reads_are_candidates(name):
    from autorag_dagster.core.keys import is_supported

    assert is_supported(name) and is_supported(name.upper())
    assert not is_supported("notes.txt")
