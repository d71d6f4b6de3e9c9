"""The data directory's layout and the stored asset values, read back only as the project's own types."""

from __future__ import annotations

import json
import threading

import pytest

from autorag_dagster.core import atomic
from autorag_dagster.core.types import AudioInfo
from autorag_dagster.layout import DataLayout, StoredValueError
from autorag_dagster.settings import load_settings


def info(key: str) -> AudioInfo:
    return AudioInfo(
        key=key,
        path=f"/a/{key}",
        sha256="0" * 64,
        size_bytes=1,
        duration_s=1.0,
        source_sample_rate=16000,
        source_channels=1,
        pcm_path="x.npy",
    )


def test_every_path_hangs_off_the_data_directory(tmp_path):
    layout = load_settings(data_dir=tmp_path / "d").layout
    assert layout.file_dir("a b.wav").parent == tmp_path / "d" / "files"
    assert layout.file_dir("a b.wav") != layout.file_dir("a_b.wav")
    assert layout.stored_path("audio", "x.wav") == layout.file_dir("x.wav") / "assets" / "audio.json"
    assert (layout.viz_index, layout.llm_cache, layout.dagster_home) == (
        tmp_path / "d" / "viz" / "index.html",
        tmp_path / "d" / "cache" / "llm",
        tmp_path / "d" / "dagster",
    )
    assert layout.lancedb == str(tmp_path / "d" / "lancedb")
    assert DataLayout(tmp_path, lancedb_uri="s3://bucket/db").lancedb == "s3://bucket/db"


def test_a_stored_value_reads_back_as_its_type(tmp_path):
    layout = DataLayout(tmp_path)
    layout.write_stored("audio", "x.wav", info("x.wav"))
    assert layout.read_stored("audio", "x.wav") == info("x.wav")
    assert layout.stored_paths("audio") == [layout.stored_path("audio", "x.wav")]
    with pytest.raises(FileNotFoundError, match="materialise transcript"):
        layout.read_stored("transcript", "x.wav")


def test_a_forged_stored_value_naming_a_foreign_module_is_refused(tmp_path):
    layout = DataLayout(tmp_path)
    path = layout.stored_path("audio", "x.wav")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "os:system", "value": "echo owned"}))
    with pytest.raises(StoredValueError, match="not one of this project's"):
        layout.read_stored("audio", "x.wav")
    path.write_text(json.dumps({"type": "autorag_dagster.layout:DataLayout", "value": {}}))
    with pytest.raises(StoredValueError, match="not a stored value type"):
        layout.read_stored("audio", "x.wav")
    path.write_text("{not json")
    with pytest.raises(StoredValueError, match="not a stored asset value"):
        layout.read_stored("audio", "x.wav")


def test_concurrent_atomic_writers_never_leave_a_mixed_or_temporary_file(tmp_path):
    target = tmp_path / "out" / "value.json"
    payloads = [{"writer": n, "data": "x" * 20000} for n in range(8)]
    threads = [threading.Thread(target=atomic.write_json, args=(target, p)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(target.read_text()) in payloads
    assert [p.name for p in target.parent.iterdir()] == ["value.json"]
    assert target.stat().st_mode & 0o777 == 0o644
