"""The data directory's layout and the stored asset values, read back only as the project's own types."""

from __future__ import annotations

import json
import sys
import threading
import typing

import pytest

from autorag_dagster.core import atomic
from autorag_dagster.core.types import AudioInfo, Word
from autorag_dagster.layout import STORED_TYPES, DataLayout, StoredValueError, type_name
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


@pytest.mark.parametrize(
    "forged",
    [
        {"type": "os:system", "value": "echo owned"},
        {"type": "subprocess:Popen", "value": {"args": ["sh"]}},
        # The project's own modules, but not a stored value type: nothing outside the registry loads.
        {"type": "autorag_dagster.settings:Settings", "value": {"data_dir": "/"}},
        {"type": "autorag_dagster.layout:DataLayout", "value": {}},
        {"type": "autorag_dagster.core.types:Word", "value": {"start": 0, "end": 1, "text": "x"}},
    ],
)
def test_a_forged_stored_value_naming_a_type_outside_the_registry_is_refused_unimported(tmp_path, forged):
    layout = DataLayout(tmp_path)
    path = layout.stored_path("audio", "x.wav")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(forged))
    module = forged["type"].partition(":")[0]
    was_imported = module in sys.modules
    with pytest.raises(StoredValueError, match="not one of this project's stored value types") as refused:
        layout.read_stored("audio", "x.wav")
    assert forged["type"] in str(refused.value) and str(path) in str(refused.value)
    assert "re-materialise the asset" in str(refused.value)
    assert (module in sys.modules) == was_imported


def test_a_broken_stored_value_is_refused_with_a_clear_error(tmp_path):
    layout = DataLayout(tmp_path)
    path = layout.stored_path("audio", "x.wav")
    path.parent.mkdir(parents=True)
    for broken in ("{not json", "[]", json.dumps({"value": {}}), json.dumps({"type": 3, "value": {}})):
        path.write_text(broken)
        with pytest.raises(StoredValueError, match="is not a stored asset value"):
            layout.read_stored("audio", "x.wav")
    path.write_text(json.dumps({"type": type_name(AudioInfo), "value": {"key": "x.wav"}}))
    with pytest.raises(StoredValueError, match="does not hold a valid AudioInfo"):
        layout.read_stored("audio", "x.wav")


def test_the_registry_holds_what_every_per_file_asset_returns(tmp_path):
    from autorag_dagster.defs.assets import search, speech, topics, viz

    assets = (speech.audio, speech.transcript, speech.diarization, speech.speaker_transcript, topics.topic_tree)
    returned = {
        typing.get_type_hints(asset.op.compute_fn.decorated_fn)["return"].__args__[1]
        for asset in (*assets, search.embeddings, viz.viz)
    }
    assert set(STORED_TYPES.values()) == returned
    assert STORED_TYPES[type_name(AudioInfo)] is AudioInfo
    with pytest.raises(StoredValueError, match="not a stored value type"):
        DataLayout(tmp_path).write_stored("audio", "x.wav", Word(start=0, end=1, text="x"))


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
