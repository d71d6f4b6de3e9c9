"""`autorag export chapters FILE [--embed OUT]` on a data folder with stored results."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import av
import pytest
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.core.types import AudioInfo, TopicNode, TopicTree
from autorag_dagster.layout import DataLayout
from autorag_dagster.settings import get_settings

KEY = "club/weekly call.mp3"


def tone(path, seconds=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"sine=duration={seconds}",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def processed(tmp_path, monkeypatch):
    """A data folder with the stored audio and topic tree of one mp3, and a second mp3 with no tree."""
    monkeypatch.chdir(tmp_path)
    audio_dir, data_dir = tmp_path / "audio", tmp_path / "data"
    source = tone(audio_dir / KEY)
    tone(audio_dir / "club" / "new.mp3")
    layout = DataLayout(data_dir)
    info = AudioInfo(
        key=KEY, path=str(source), sha256="0", size_bytes=1, duration_s=6.0, source_sample_rate=44100,
        source_channels=1, pcm_path="x.npy",
    )  # fmt: skip
    layout.write_stored("audio", KEY, info)
    tree = TopicTree(
        key=KEY,
        duration_s=6.0,
        title="Weekly call",
        nodes=[
            TopicNode(id="1", level=1, start=0.0, end=3.0, title="Money [left] over"),
            TopicNode(
                id="2",
                level=1,
                start=3.0,
                end=6.0,
                title="Posters",
                children=[
                    TopicNode(id="2.1", level=2, start=3.0, end=4.5, title="Printing"),
                    TopicNode(id="2.2", level=2, start=4.5, end=6.0, title="Hanging"),
                ],
            ),
        ],
    )
    layout.write_stored("topic_tree", KEY, tree)
    monkeypatch.setenv("AUTORAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AUTORAG_AUDIO_DIR", str(audio_dir))
    get_settings.cache_clear()
    yield source, layout
    get_settings.cache_clear()


def autorag(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def chapters_in(path):
    with av.open(str(path)) as container:
        return [(float(c["start"] * c["time_base"]), c["metadata"]["title"]) for c in container.chapters()]


def test_export_chapters_writes_the_files_and_an_embedded_copy(processed, tmp_path):
    source, layout = processed
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "out" / "weekly call with chapters.mp3"

    result = autorag("export", "chapters", str(source), "--embed", str(out))

    assert result.exit_code == 0, result.output
    assert "Money [left] over" in result.output and "Printing" in result.output  # brackets are not markup
    for name in ("chapters.vtt", "chapters.json", "chapters.txt", "chapters.ffmetadata"):
        assert (layout.file_dir(KEY) / name).is_file() and str(layout.file_dir(KEY) / name) in result.output
    assert (layout.file_dir(KEY) / "chapters.txt").read_text().splitlines() == [
        "00:00 Money [left] over",
        "00:03 Posters",
    ]
    assert chapters_in(out) == [(0.0, "Money [left] over"), (3.0, "Posters")]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before and chapters_in(source) == []

    again = autorag("export", "chapters", str(source), "--embed", str(out))
    assert again.exit_code == 1 and "--force" in again.output
    assert autorag("export", "chapters", str(source), "--embed", str(out), "--force").exit_code == 0

    # By its key, the audio found through what the data folder recorded.
    by_key = autorag("export", "chapters", KEY, "--embed", str(tmp_path / "by key.m4a"))
    assert by_key.exit_code == 0, by_key.output
    assert chapters_in(tmp_path / "by key.m4a") == [(0.0, "Money [left] over"), (3.0, "Posters")]


def test_export_chapters_says_what_to_run_first(processed, tmp_path):
    source, _ = processed
    new = source.parent / "new.mp3"
    result = autorag("export", "chapters", str(new), "--embed", str(tmp_path / "x.mp3"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert "has no topic tree yet" in flat or "has not been processed" in flat
    assert f"autorag run {new.parent}" in flat
    assert not (tmp_path / "x.mp3").exists()

    unknown = autorag("export", "chapters", "nowhere/never.mp3")
    assert unknown.exit_code == 1 and "autorag run" in unknown.output

    original = source.read_bytes()
    same = autorag("export", "chapters", str(source), "--embed", str(source), "--force")
    assert same.exit_code == 1 and "original" in same.output and source.read_bytes() == original


def test_export_chapters_without_ffmpeg_says_so(processed, tmp_path, monkeypatch):
    source, _ = processed
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = autorag("export", "chapters", str(source), "--embed", str(tmp_path / "x.mp3"))
    assert result.exit_code == 1 and "ffmpeg is not installed" in " ".join(result.output.split())
