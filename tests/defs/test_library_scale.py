"""The folder sensor on a library of a few hundred files, over a real instance: a small cursor, one
batch of partitions, one run, and a changed file found without reading the others again."""

from __future__ import annotations

import json
import os
import time

import pytest
from dagster import SensorResult, build_sensor_context, instance_for_test

from autorag_dagster.core.audio import sha256_file
from autorag_dagster.core.folder_state import FolderStateStore
from autorag_dagster.core.hashes import HashIndex
from autorag_dagster.core.types import AudioInfo
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.defs.sensors import audio_folder_sensor
from autorag_dagster.layout import DataLayout
from autorag_dagster.samples import tiny_library
from tests.support.dagster_runs import covered_keys

FILES = 300
OLD = time.time() - 3600
CURSOR_BYTES = 100  # a digest: whatever the number of files


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def library(tmp_path, local_ollama):
    audio = tmp_path / "audio"
    keys = tiny_library(audio, FILES, mtime=OLD)
    resources = {
        "storage": StorageResource(audio_dir=str(audio), data_dir=str(tmp_path / "data")),
        "ollama": OllamaResource(ollama_base_url=local_ollama.url),
    }
    return audio, DataLayout(tmp_path / "data"), keys, resources


def tick(instance, resources, cursor=None, counted: list | None = None):
    """One evaluation; the partitions it asks for are added as the daemon would. ``counted``
    collects the key lists of every ``add_dynamic_partitions`` call made during the tick."""
    add = instance.add_dynamic_partitions

    def counting_add(name, keys):
        counted.append(list(keys))
        return add(name, keys)

    if counted is not None:
        instance.add_dynamic_partitions = counting_add
    try:
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            result = audio_folder_sensor(context)
    finally:
        instance.add_dynamic_partitions = add
    assert isinstance(result, SensorResult)
    for request in result.dynamic_partitions_requests:
        add(request.partitions_def_name, list(request.partition_keys))
    return result


def processed(layout: DataLayout, audio, keys) -> None:
    """What the `audio` asset records, written for ``keys`` as if their runs had finished."""
    for key in keys:
        info = AudioInfo(
            key=key,
            path=str(audio / key),
            sha256=sha256_file(audio / key),
            size_bytes=(audio / key).stat().st_size,
            duration_s=0.1,
            source_sample_rate=16000,
            source_channels=1,
            pcm_path="unused.npy",
        )
        layout.write_stored("audio", key, info)


def test_a_library_is_added_in_one_batch_and_run_as_one_with_a_small_cursor(instance, library):
    audio, layout, keys, resources = library
    calls: list[list[str]] = []
    first = tick(instance, resources, counted=calls)

    [run] = first.run_requests  # one run for every file, not one per file
    assert run.job_name == "process_audio"
    assert covered_keys(instance, run) == sorted(keys)
    assert "300 file(s)" in run.tags["autorag/files"]
    [added] = first.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted(keys)
    assert calls == [sorted(keys)]  # the partitions came in one call, not one per file
    assert list(instance.get_dynamic_partitions(audio_files.name)) == sorted(keys)

    # The cursor names the state's snapshot; the per-file state is in the data folder.
    assert len(first.cursor.encode()) <= CURSOR_BYTES
    assert not any(key in first.cursor for key in keys)
    snapshot = json.loads(first.cursor)["state"]
    state = FolderStateStore(layout.folder_sensor_state).load(snapshot)
    assert sorted(state.done) == sorted(keys) and sorted(state.seen) == sorted(keys)

    # Steady state: nothing requested, the same snapshot, nothing read to hash.
    read = HashIndex.files_read
    second = tick(instance, resources, first.cursor)
    assert second.run_requests == [] and second.cursor == first.cursor
    assert HashIndex.files_read == read
    assert [p.name for p in layout.folder_sensor_state.iterdir()] == [f"{snapshot}.json"]


def test_a_changed_file_is_found_without_reading_the_others(instance, library):
    audio, layout, keys, resources = library
    first = tick(instance, resources)
    processed(layout, audio, keys)

    changed, touched = keys[7], keys[123]
    (audio / changed).write_bytes((audio / keys[8]).read_bytes())  # new content
    os.utime(audio / changed, (OLD + 60, OLD + 60))
    os.utime(audio / touched, (OLD + 60, OLD + 60))  # same content, new time
    read = HashIndex.files_read
    second = tick(instance, resources, first.cursor)
    # Exactly the two files whose size or time changed were read, to compare with what was processed.
    assert HashIndex.files_read - read == 2
    [run] = second.run_requests
    assert run.partition_key == changed and run.run_key != first.run_requests[0].run_key
    assert second.dynamic_partitions_requests == []
    # The touched file is done; the next tick reads nothing and requests nothing.
    read = HashIndex.files_read
    third = tick(instance, resources, second.cursor)
    assert third.run_requests == [] and HashIndex.files_read == read


def test_a_tick_that_did_not_commit_is_evaluated_again_from_the_previous_state(instance, library):
    audio, layout, keys, resources = library
    first = tick(instance, resources)
    new = tiny_library(audio / "later", 3, mtime=OLD)
    second = tick(instance, resources, first.cursor)
    # The daemon did not store the second cursor: the next tick starts from the first one again,
    # whose snapshot is still there, and asks for the same run (the same run key: launched once).
    again = tick(instance, resources, first.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in second.run_requests]
    assert covered_keys(instance, again.run_requests[0]) == sorted(f"later/{k}" for k in new)
    assert again.cursor == second.cursor


def test_a_cursor_of_the_older_kind_and_a_lost_state(instance, library):
    audio, layout, keys, resources = library
    first = tick(instance, resources)
    state = FolderStateStore(layout.folder_sensor_state).load(json.loads(first.cursor)["state"])
    older = json.dumps({"seen": state.seen, "done": state.done, "left_out": {}, "tidied": []})
    assert tick(instance, resources, older).run_requests == []  # read as the state itself

    for snapshot in layout.folder_sensor_state.iterdir():
        snapshot.unlink()  # a data folder emptied under a running sensor
    again = tick(instance, resources, first.cursor)
    [run] = again.run_requests  # every file is looked at again
    assert covered_keys(instance, run) == sorted(keys)
