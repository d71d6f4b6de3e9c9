"""The folder sensor and the nightly backfill schedule, evaluated against a real instance."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from autorag_dagster.core.audio import sha256_file
from autorag_dagster.core.hashes import HashIndex
from autorag_dagster.core.types import AudioInfo
from autorag_dagster.defs import build_definitions
from autorag_dagster.defs.jobs import process_audio
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource
from autorag_dagster.defs.sensors import audio_folder_sensor
from autorag_dagster.settings import load_settings
from tests.support.dagster_runs import covered_keys
from tests.support.speech import SAMPLE_RATE, convert, write_wav

OLD = time.time() - 3600


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    return root


def write(path, data: bytes = b"RIFF....WAVE", mtime: float | None = OLD):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def tone(path, hz: float, seconds: float = 0.5):
    """A short real wav (the schedule probes files before it backfills them)."""
    samples = 8000 * np.sin(2 * np.pi * hz * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)
    write_wav(path, samples)
    os.utime(path, (OLD, OLD))


def resources(folder, tmp_path, server_url):
    return {
        "storage": StorageResource(audio_dir=str(folder), data_dir=str(tmp_path / "data")),
        "ollama": OllamaResource(ollama_base_url=server_url),
    }


def tick(instance, res, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor, resources=res) as ctx:
        result = audio_folder_sensor(ctx)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def requested(result, instance) -> list[str]:
    """The files of the one process_audio run a tick requests (none when it requests none)."""
    if not isinstance(result, SensorResult) or not result.run_requests:
        return []
    [request] = [r for r in result.run_requests if r.job_name == "process_audio"]
    return sorted(covered_keys(instance, request))


def sound(path, hz: float, mtime: float | None = OLD):
    """A short real recording in the format ``path``'s extension names (the sensor probes what it finds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_name(f".{path.name}.wav")
    tone(wav, hz)
    convert(wav, path)
    wav.unlink()
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_sensor_new_changed_partial_unsupported_and_invalid(instance, folder, tmp_path, local_ollama):
    res = resources(folder, tmp_path, local_ollama.url)
    sound(folder / "talks" / "a talk.mp3", 220)
    sound(folder / "b.opus", 330)
    write(folder / "notes.txt")  # not audio
    write(folder / "fake.mp3")  # named as audio, is not: left out with the reason
    write(folder / ".hidden.wav")
    outside = tmp_path / "outside.wav"
    write(outside)
    (folder / "escape.wav").symlink_to(outside)  # resolves outside the root
    sound(folder / "recording.wav", 440, mtime=None)  # just created: may still be written

    first = tick(instance, res)
    assert requested(first, instance) == ["b.opus", "talks/a talk.mp3"]
    assert set(instance.get_dynamic_partitions(audio_files.name)) == {"b.opus", "talks/a talk.mp3"}
    assert all(r.job_name == "process_audio" for r in first.run_requests)

    # The recording grew since the last tick: still not complete.
    with open(folder / "recording.wav", "ab") as grown:
        grown.write(b"\0" * 100)
    second = tick(instance, res, first.cursor)
    assert requested(second, instance) == []
    # Unchanged since the last tick: complete now.
    third = tick(instance, res, second.cursor)
    assert requested(third, instance) == ["recording.wav"]

    # Nothing new: nothing requested, and a reason is given, naming what is left out and why.
    fourth = tick(instance, res, third.cursor)
    assert (
        requested(fourth, instance) == []
        and fourth.skip_reason
        and "No new or changed" in fourth.skip_reason.skip_message
    )
    assert "fake.mp3 (" in fourth.skip_reason.skip_message

    # A changed file is requested again, with a new run key.
    sound(folder / "b.opus", 550, mtime=OLD + 10)
    fifth = tick(instance, res, fourth.cursor)
    assert requested(fifth, instance) == ["b.opus"]
    assert fifth.run_requests[0].run_key != first.run_requests[0].run_key
    assert "escape.wav" not in instance.get_dynamic_partitions(audio_files.name)
    assert "fake.mp3" not in instance.get_dynamic_partitions(audio_files.name)


def test_sensor_requests_nothing_while_models_are_missing(instance, folder, tmp_path, local_ollama_factory):
    server = local_ollama_factory(pulled=["nomic-embed-text"])
    write(folder / "a.wav")
    result = tick(instance, resources(folder, tmp_path, server.url))
    assert isinstance(result, SkipReason)
    assert "gemma4:latest" in result.skip_message and "pull" in result.skip_message
    assert instance.get_dynamic_partitions(audio_files.name) == []


def test_sensor_reports_an_unreachable_server(instance, folder, tmp_path):
    write(folder / "a.wav")
    result = tick(instance, resources(folder, tmp_path, "http://127.0.0.1:9"))
    assert isinstance(result, SkipReason)
    assert "127.0.0.1:9" in result.skip_message


def test_nightly_backfill_selects_missing_and_stale_files_as_one_run(instance, folder, tmp_path, local_ollama):
    settings = load_settings(ollama_base_url=local_ollama.url, audio_dir=folder, data_dir=tmp_path / "data")
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    per_file = process_audio.selection.resolve(graph)
    names = [f"{n}.wav" for n in range(1, 7)]
    for hz, name in enumerate(names, start=3):
        tone(folder / name, 110.0 * hz)
    write(folder / "broken.wav", b"RIFF" + b"\x00" * 64)  # never materialised, and not audio
    instance.add_dynamic_partitions(audio_files.name, [n for n in names if n != "3.wav"])

    def materialised(key: str, versions: dict[AssetKey, str | None]):
        for asset_key in per_file:
            version = versions.get(asset_key, graph.get(asset_key).code_version)
            instance.report_runless_asset_event(
                AssetMaterialization(asset_key, partition=key, tags={"dagster/code_version": version or ""})
            )
        info = AudioInfo(
            key=key,
            path=str(folder / key),
            sha256=sha256_file(folder / key),
            size_bytes=1,
            duration_s=1.0,
            source_sample_rate=16000,
            source_channels=1,
            pcm_path="x.npy",
        )
        settings.layout.write_stored("audio", key, info)

    # Stale: 1 (code changed), 3 (never materialised), 5 (source edited); fresh: 2, 4, 6.
    for name in ("2.wav", "4.wav", "6.wav", "5.wav"):
        materialised(name, {})
    materialised("1.wav", {AssetKey("transcript"): "transcript-0"})
    tone(folder / "5.wav", 999.0)

    res = {"storage": StorageResource.from_settings(settings), "ollama": OllamaResource.from_settings(settings)}
    repo = defs.get_repository_def()
    nightly_backfill = defs.get_schedule_def("nightly_backfill")
    with build_schedule_context(instance=instance, repository_def=repo, resources=res) as ctx:
        request = nightly_backfill(ctx)
    assert isinstance(request, RunRequest), request
    first, last = request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]
    order = list(instance.get_dynamic_partitions(audio_files.name))
    covered = order[order.index(first) : order.index(last) + 1]
    assert covered == ["1.wav", "3.wav", "5.wav"]  # one run, exactly the stale files
    assert set(order) >= {*names}  # every file is still a partition
    stale = request.tags["autorag/stale"]
    assert "code changed" in stale and "never materialised" in stale and "source file changed" in stale
    assert "broken.wav" not in stale

    # Nothing stale: no run; the unchanged files are not read again to hash them.
    for key in ("1.wav", "3.wav", "5.wav"):
        materialised(key, {})
    with build_schedule_context(instance=instance, repository_def=repo, resources=res) as ctx:
        again = nightly_backfill(ctx)
    assert isinstance(again, SkipReason) and "up to date" in again.skip_message
    assert "broken.wav" in again.skip_message and "Left out, unreadable" in again.skip_message
    index = HashIndex(settings.layout.source_hashes)
    assert len(json.loads(settings.layout.source_hashes.read_text())) == 6
    assert [index.sha256(folder / n) for n in names] and index.hashed == 0


def test_the_backfill_cron_comes_from_the_settings_given_to_build_definitions(tmp_path):
    settings = load_settings(backfill_cron="30 3 * * 1", audio_dir=tmp_path, data_dir=tmp_path / "data")
    assert build_definitions(settings).get_schedule_def("nightly_backfill").cron_schedule == "30 3 * * 1"
