"""Chapters from a topic tree, in the formats players and platforms read, and embedded in audio.

Level-1 topics are the chapters. Level-2 topics are sub-chapters where the format nests
chapters, which of these four only WebVTT does (a sub-chapter cue lies inside its chapter's
cue); the other formats are flat and carry level 1 only.

- ``chapters.vtt``: a WebVTT chapter track (``<track kind="chapters">``), cue ids ``1``, ``1.1``;
- ``chapters.json``: the Podcasting 2.0 JSON chapters format (version 1.2.0);
- ``chapters.txt``: ``00:00 Title`` lines as video descriptions take them, the first at 00:00,
  ``HH:MM:SS`` when the recording lasts an hour or more;
- ``chapters.ffmetadata``: FFmpeg's metadata file (``;FFMETADATA1``, ``[CHAPTER]`` with a
  1/1000 time base), what ``embed_chapters`` hands ffmpeg to write the chapters into a copy of
  an mp3 (ID3 CHAP frames) or m4a (MP4 chapters).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from autorag_dagster.core.atomic import write_text
from autorag_dagster.core.exports import timestamp
from autorag_dagster.core.types import TopicNode, TopicTree

PODCAST_CHAPTERS_VERSION = "1.2.0"
EMBED_FORMATS = {".mp3": "libmp3lame", ".m4a": "aac"}  # the formats a copy can be written in, and their encoder


class ChaptersError(RuntimeError):
    """Chapters cannot be written as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Chapter:
    id: str
    start: float
    end: float
    title: str
    children: list[Chapter] = field(default_factory=list)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _title(node: TopicNode) -> str:
    return _one_line(node.title) or f"Chapter {node.id}"


def chapters_of(tree: TopicTree) -> list[Chapter]:
    """The tree's level-1 nodes as chapters (level 2 as their sub-chapters), in time order; the
    first starts at 0 and the last ends at the recording's end."""
    duration = max(tree.duration_s, max((n.end for n in tree.nodes), default=0.0))
    nodes = sorted(tree.nodes, key=lambda n: n.start)
    chapters = []
    for i, node in enumerate(nodes):
        start = 0.0 if i == 0 else node.start
        end = duration if i == len(nodes) - 1 else nodes[i + 1].start
        children = [
            Chapter(c.id, max(c.start, start), min(c.end, end), _title(c))
            for c in sorted(node.children, key=lambda c: c.start)
            if min(c.end, end) > max(c.start, start)
        ]
        chapters.append(Chapter(node.id, start, end, _title(node), children))
    return chapters


# --- WebVTT ---------------------------------------------------------------------------------


def _vtt_text(text: str) -> str:
    # Chapter title text: one line, no '-->', with & and < as character references.
    return html.escape(text.replace("-->", "->"), quote=False)


def to_webvtt_chapters(chapters: list[Chapter]) -> str:
    blocks = ["WEBVTT\n"]
    for chapter in chapters:
        for cue in (chapter, *chapter.children):
            blocks.append(f"{cue.id}\n{timestamp(cue.start)} --> {timestamp(cue.end)}\n{_vtt_text(cue.title)}\n")
    return "\n".join(blocks)


# --- Podcasting 2.0 JSON chapters -----------------------------------------------------------


def to_podcast_chapters(chapters: list[Chapter], *, title: str = "", file_name: str = "") -> dict:
    document: dict = {"version": PODCAST_CHAPTERS_VERSION}
    if title:
        document["title"] = _one_line(title)
    if file_name:
        document["fileName"] = file_name
    document["chapters"] = [
        {"startTime": round(c.start, 3), "endTime": round(c.end, 3), "title": c.title} for c in chapters
    ]
    return document


# --- 00:00 Title lines ----------------------------------------------------------------------


def clock_for(seconds: float, *, hours: bool) -> str:
    """``MM:SS``, or ``HH:MM:SS`` when ``hours`` (the recording lasts an hour or more)."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" if hours else f"{m + 60 * h:02d}:{s:02d}"


def to_timestamp_lines(chapters: list[Chapter]) -> str:
    hours = bool(chapters) and chapters[-1].end >= 3600
    lines, seen = [], set()
    for chapter in chapters:
        stamp = clock_for(chapter.start, hours=hours)
        if stamp in seen:  # two chapters within one second: a platform would keep neither apart
            continue
        seen.add(stamp)
        lines.append(f"{stamp} {chapter.title}")
    return "".join(line + "\n" for line in lines)


# --- FFmpeg metadata ------------------------------------------------------------------------


def ffmetadata_escape(text: str) -> str:
    """A value for FFmpeg's metadata file: '=', ';', '#', '\\' and newlines escaped with '\\'."""
    return re.sub(r"([=;#\\\n])", r"\\\1", text)


def to_ffmetadata(chapters: list[Chapter]) -> str:
    lines = [";FFMETADATA1"]
    for chapter in chapters:
        start, end = round(chapter.start * 1000), round(chapter.end * 1000)
        lines += ["", "[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={max(end, start + 1)}"]
        lines.append(f"title={ffmetadata_escape(chapter.title)}")
    return "\n".join(lines) + "\n"


# --- files ----------------------------------------------------------------------------------

CHAPTER_FILES = {
    "chapters_vtt": "chapters.vtt",
    "chapters_json": "chapters.json",
    "chapters_txt": "chapters.txt",
    "chapters_ffmetadata": "chapters.ffmetadata",
}


def export_chapters(tree: TopicTree, folder: Path | str) -> dict[str, Path]:
    """Write the four chapter files of one recording into ``folder``; return them by kind."""
    folder, chapters = Path(folder), chapters_of(tree)
    podcast = to_podcast_chapters(chapters, title=tree.title, file_name=Path(tree.key).name)
    texts = {
        "chapters_vtt": to_webvtt_chapters(chapters),
        "chapters_json": json.dumps(podcast, indent=2, ensure_ascii=False) + "\n",
        "chapters_txt": to_timestamp_lines(chapters),
        "chapters_ffmetadata": to_ffmetadata(chapters),
    }
    return {kind: write_text(folder / CHAPTER_FILES[kind], text) for kind, text in texts.items()}


def embed_chapters(source: Path | str, ffmetadata: Path | str, out: Path | str, *, overwrite: bool = False) -> Path:
    """Write a copy of ``source`` at ``out`` with the chapters of ``ffmetadata`` in it.

    ``out`` ends in .mp3 or .m4a. The audio is copied as it is when ``source`` already has that
    format, else encoded (libmp3lame or AAC); the source's own tags are kept. ``source`` is only
    read: the copy is written beside ``out`` and renamed into place when ffmpeg succeeded.
    """
    source, ffmetadata, out = Path(source), Path(ffmetadata), Path(out)
    suffix = out.suffix.lower()
    if suffix not in EMBED_FORMATS:
        raise ChaptersError(f"{out.name}: chapters can be embedded in .mp3 or .m4a files; name the copy so.")
    if not source.is_file():
        raise ChaptersError(f"{source} does not exist.")
    if not ffmetadata.is_file():
        raise ChaptersError(f"{ffmetadata} does not exist.")
    if out.resolve() == source.resolve():
        raise ChaptersError(
            f"{out} is the original file: name another file for the copy (the original is never modified)."
        )
    if out.exists() and not overwrite:
        raise ChaptersError(f"{out} already exists: remove it or pass --force.")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ChaptersError(
            "ffmpeg is not installed or not on PATH; install it (e.g. `apt-get install ffmpeg`) and run again."
        )
    if source.suffix.lower() == suffix:  # the audio (and any cover art) as it is
        streams = ["-map", "0:a", "-map", "0:v?", "-codec", "copy"]
    else:
        streams = ["-map", "0:a", "-c:a", EMBED_FORMATS[suffix]]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial{suffix}")
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source), "-i", str(ffmetadata),
        *streams, "-map_metadata", "0", "-map_chapters", "1",
        str(partial),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        raise ChaptersError(f"ffmpeg could not write {out.name} from {source.name}: {detail}")
    partial.replace(out)
    return out
