"""Chapter files checked by their formats' own readers: webvtt-py, a JSON schema of the
Podcasting 2.0 chapters format, and ffmpeg (through PyAV) reading chapters back from a copy."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess

import av
import jsonschema
import pytest
import webvtt

from autorag_dagster.core.chapters import (
    ChaptersError,
    chapters_of,
    embed_chapters,
    export_chapters,
    ffmetadata_escape,
    to_timestamp_lines,
)
from autorag_dagster.core.types import TopicNode, TopicTree

TRICKY = 'Fish & <chips> = 1; #2 \\ "three" --> four'

# The Podcasting 2.0 JSON chapters format, version 1.2 (podcast-namespace, chapters/jsonChapters.md).
PODCAST_CHAPTERS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "chapters"],
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.2(\.\d+)?$"},
        "author": {"type": "string"},
        "title": {"type": "string"},
        "podcastName": {"type": "string"},
        "description": {"type": "string"},
        "fileName": {"type": "string"},
        "waypoints": {"type": "boolean"},
        "chapters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["startTime"],
                "properties": {
                    "startTime": {"type": "number", "minimum": 0},
                    "endTime": {"type": "number", "minimum": 0},
                    "title": {"type": "string"},
                    "img": {"type": "string"},
                    "url": {"type": "string"},
                    "toc": {"type": "boolean"},
                    "location": {
                        "type": "object",
                        "required": ["name", "geo"],
                        "properties": {
                            "name": {"type": "string"},
                            "geo": {"type": "string"},
                            "osm": {"type": "string"},
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def tree_of(duration: float = 95.0, key: str = "club/weekly call.mp3") -> TopicTree:
    third = duration / 3
    return TopicTree(
        key=key,
        duration_s=duration,
        title="The weekly call",
        summary="Plans and money.",
        nodes=[
            TopicNode(id="1", level=1, start=0.4, end=third, title="Welcome\nand news"),
            TopicNode(
                id="2",
                level=1,
                start=third,
                end=2 * third,
                title=TRICKY,
                children=[
                    TopicNode(id="2.1", level=2, start=third, end=third + 10, title="Costs"),
                    TopicNode(id="2.2", level=2, start=third + 10, end=2 * third, title=""),
                ],
            ),
            TopicNode(id="3", level=1, start=2 * third, end=duration, title="Next steps"),
        ],
    )


def seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_webvtt_chapter_track_parses_with_sub_chapters_inside_their_chapter(tmp_path):
    tree = tree_of()
    files = export_chapters(tree, tmp_path)
    captions = webvtt.read(str(files["chapters_vtt"]))
    assert [c.identifier for c in captions] == ["1", "2", "2.1", "2.2", "3"]
    assert captions[0].text == "Welcome and news" and seconds(captions[0].start) == 0.0
    assert html.unescape(captions[1].text) == TRICKY.replace("-->", "->")
    assert "<" not in captions[1].text and "-->" not in captions[1].text
    assert captions[3].text == "Chapter 2.2"  # an untitled node still gets a title
    assert seconds(captions[-1].end) == tree.duration_s
    parent, subs = captions[1], captions[2:4]
    for sub in subs:
        assert seconds(parent.start) <= seconds(sub.start) < seconds(sub.end) <= seconds(parent.end)
    starts = [seconds(c.start) for c in captions]
    assert starts == sorted(starts)


def test_podcast_chapters_json_validates_against_the_format(tmp_path):
    tree = tree_of()
    document = json.loads(export_chapters(tree, tmp_path)["chapters_json"].read_text(encoding="utf-8"))
    jsonschema.validate(document, PODCAST_CHAPTERS_SCHEMA)
    assert document["version"] == "1.2.0" and document["fileName"] == "weekly call.mp3"
    chapters = document["chapters"]
    assert [c["title"] for c in chapters] == ["Welcome and news", TRICKY, "Next steps"]
    assert chapters[0]["startTime"] == 0
    assert [c["startTime"] for c in chapters] == sorted(c["startTime"] for c in chapters)
    assert chapters[-1]["endTime"] == tree.duration_s
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail
        jsonschema.validate({"version": "1.2.0", "chapters": [{"title": "no start"}]}, PODCAST_CHAPTERS_SCHEMA)


LINE = re.compile(r"^(?:\d{2}:)?\d{2}:\d{2} \S.*$")


def test_timestamp_lines_start_at_zero_and_use_hours_past_an_hour(tmp_path):
    text = export_chapters(tree_of(), tmp_path)["chapters_txt"].read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines == ["00:00 Welcome and news", f"00:31 {TRICKY}", "01:03 Next steps"]
    assert all(LINE.match(line) for line in lines)

    long = to_timestamp_lines(chapters_of(tree_of(duration=2 * 3600 + 30)))
    assert long.splitlines() == ["00:00:00 Welcome and news", f"00:40:10 {TRICKY}", "01:20:20 Next steps"]
    assert all(re.match(r"^\d{2}:\d{2}:\d{2} ", line) for line in long.splitlines())


def test_ffmetadata_escapes_its_special_characters():
    assert ffmetadata_escape("a=b;c#d\\e\nf") == "a\\=b\\;c\\#d\\\\e\\\nf"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A six-second tone as mp3, m4a and wav, made with ffmpeg."""
    folder = tmp_path_factory.mktemp("audio")
    made = {}
    for suffix, codec in (
        (".mp3", ["-c:a", "libmp3lame", "-b:a", "32k"]),
        (".m4a", ["-c:a", "aac", "-b:a", "32k"]),
        (".wav", []),
    ):
        path = folder / f"tone{suffix}"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
             "-ac", "1", "-metadata", "artist=The Club", *codec, str(path)],
            check=True,
        )  # fmt: skip
        made[suffix] = path
    return made


def chapters_read_back(path):
    with av.open(str(path)) as container:
        return [
            (
                round(float(c["start"] * c["time_base"]), 2),
                round(float(c["end"] * c["time_base"]), 2),
                c["metadata"]["title"],
            )
            for c in container.chapters()
        ], dict(container.metadata)


@pytest.mark.parametrize(("source", "out"), [(".mp3", ".mp3"), (".m4a", ".m4a"), (".wav", ".m4a"), (".wav", ".mp3")])
def test_embedded_chapters_read_back_and_the_original_is_untouched(tmp_path, recordings, source, out):
    original = recordings[source]
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    files = export_chapters(tree_of(duration=6.0), tmp_path / "exports")
    copy = embed_chapters(original, files["chapters_ffmetadata"], tmp_path / f"with chapters{out}")

    chapters, tags = chapters_read_back(copy)
    assert chapters == [(0.0, 2.0, "Welcome and news"), (2.0, 4.0, TRICKY), (4.0, 6.0, "Next steps")]
    assert tags.get("artist") == "The Club"  # the file's own tags are kept
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    assert chapters_read_back(original)[0] == []
    assert not list(tmp_path.glob(".*partial*"))


def test_embedding_refuses_what_it_cannot_do(tmp_path, recordings, monkeypatch):
    metadata = export_chapters(tree_of(duration=6.0), tmp_path)["chapters_ffmetadata"]
    source = tmp_path / "tone.mp3"
    shutil.copy(recordings[".mp3"], source)
    with pytest.raises(ChaptersError, match="original"):
        embed_chapters(source, metadata, source)
    with pytest.raises(ChaptersError, match=r"\.mp3 or \.m4a"):
        embed_chapters(source, metadata, tmp_path / "out.ogg")
    (tmp_path / "taken.mp3").write_bytes(b"")
    with pytest.raises(ChaptersError, match="already exists"):
        embed_chapters(source, metadata, tmp_path / "taken.mp3")
    assert embed_chapters(source, metadata, tmp_path / "taken.mp3", overwrite=True).stat().st_size > 0
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(ChaptersError, match="ffmpeg could not write"):
        embed_chapters(broken, metadata, tmp_path / "never.mp3")
    assert not (tmp_path / "never.mp3").exists() and not list(tmp_path.glob(".never*"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ChaptersError, match="ffmpeg is not installed"):
        embed_chapters(source, metadata, tmp_path / "other.mp3")


def test_a_tree_without_topics_still_writes_valid_files(tmp_path):
    files = export_chapters(TopicTree(key="quiet.wav", duration_s=3.0), tmp_path)
    assert list(webvtt.read(str(files["chapters_vtt"]))) == []
    document = json.loads(files["chapters_json"].read_text(encoding="utf-8"))
    jsonschema.validate(document, PODCAST_CHAPTERS_SCHEMA)
    assert document["chapters"] == [] and files["chapters_txt"].read_text() == ""
    assert files["chapters_ffmetadata"].read_text() == ";FFMETADATA1\n"
