"""The library follows the audio folder: what is stored for a file that left the folder is
removed, and what is stored for a file that moved (same content, new path) follows it.

Everything a file has lives in four places (``layout``): its folder under ``files/`` (the
stored value of each asset, the decoded samples and the exports), its page and the page's
sidecar under ``viz/``, its note in the notes folder, and its rows in the LanceDB segment table
of every embedding model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autorag_dagster.core import atomic
from autorag_dagster.core.chapters import export_chapters
from autorag_dagster.core.exports import export_diarization, export_speaker_transcript, export_transcript
from autorag_dagster.core.notes import write_note
from autorag_dagster.core.store import delete_file_rows, move_file_rows
from autorag_dagster.core.viz import SIDECAR_SUFFIX, page_relpath, write_index, write_page
from autorag_dagster.layout import DataLayout, StoredValueError

KEY_FIELDS = ("key", "file_key")


@dataclass
class Tidied:
    """What was done for one file: rows deleted or moved, files and folders removed or moved."""

    key: str
    rows: int = 0
    paths: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.rows} LanceDB row(s); " + (", ".join(self.paths) if self.paths else "no stored files")


def page_files(layout: DataLayout, key: str) -> list[Path]:
    """A file's page and the sidecar the index is built from."""
    page = layout.viz_dir / page_relpath(key)
    return [page, page.with_name(page.name.removesuffix(".html") + SIDECAR_SUFFIX)]


def _remove_page(layout: DataLayout, key: str) -> list[str]:
    removed = []
    for path in page_files(layout, key):
        if path.exists():
            path.unlink()
            removed.append(str(path))
    parent = page_files(layout, key)[0].parent
    while parent != layout.viz_dir and parent.is_relative_to(layout.viz_dir) and parent.is_dir():
        if any(parent.iterdir()):
            break
        parent.rmdir()
        parent = parent.parent
    return removed


def _remove_note(layout: DataLayout, key: str) -> list[str]:
    note = layout.note_path(key)
    if note.exists():
        note.unlink()
        return [str(note)]
    return []


def remove_file(layout: DataLayout, key: str) -> Tidied:
    """Delete everything stored for ``key``: its LanceDB rows, its folder (stored values, samples,
    exports), its note and its page; the index page is written again without it."""
    done = Tidied(key, rows=delete_file_rows(layout.lancedb, key))
    folder = layout.file_dir(key)
    if folder.exists():
        shutil.rmtree(folder)
        done.paths.append(str(folder))
    done.paths += _remove_note(layout, key)
    done.paths += _remove_page(layout, key)
    if layout.viz_dir.is_dir():
        write_index(layout.viz_dir)
    return done


def _rewrite(value: Any, replace: dict[str, str], old_key: str, new_key: str, name: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, replace, old_key, new_key, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, replace, old_key, new_key, name) for v in value]
    if isinstance(value, str):
        if name in KEY_FIELDS and value == old_key:
            return new_key
        for old, new in replace.items():
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
    return value


def move_file(layout: DataLayout, old_key: str, new_key: str, new_source: Path) -> Tidied:
    """Give what is stored for ``old_key`` to ``new_key`` (the same content under a new path):
    its folder, with every stored value and export naming the new key and paths; its LanceDB rows;
    its page, note and chapter files, written again under the new key. Nothing is transcribed or
    embedded again."""
    old_dir, new_dir = layout.file_dir(old_key), layout.file_dir(new_key)
    if not old_dir.is_dir():
        raise FileNotFoundError(f"nothing is stored for {old_key!r} at {old_dir}")
    if new_dir.exists():
        shutil.rmtree(new_dir)
    new_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(old_dir), str(new_dir))
    done = Tidied(new_key, paths=[f"{old_dir} -> {new_dir}"])
    old_page, new_page = page_files(layout, old_key)[0], page_files(layout, new_key)[0]
    replace = {str(old_dir): str(new_dir), str(old_page): str(new_page)}
    try:
        audio = json.loads(layout.stored_path("audio", new_key).read_text(encoding="utf-8"))
        replace[audio["value"]["path"]] = str(new_source)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for path in sorted(new_dir.rglob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        atomic.write_json(path, _rewrite(payload, replace, old_key, new_key))
    done.rows = move_file_rows(layout.lancedb, old_key, new_key)
    done.paths += _remove_note(layout, old_key)
    _rerender(layout, new_key)
    done.paths += _remove_page(layout, old_key)
    if layout.viz_dir.is_dir():
        write_index(layout.viz_dir)
    return done


def _rerender(layout: DataLayout, key: str) -> None:
    """The exports, note and page of ``key`` written again from its stored values (they name the key)."""
    folder = layout.file_dir(key)

    def stored(asset: str):
        try:
            return layout.read_stored(asset, key)
        except (FileNotFoundError, StoredValueError):
            return None

    transcript, diarization, speaker = stored("transcript"), stored("diarization"), stored("speaker_transcript")
    tree = stored("topic_tree")
    if transcript is not None:
        export_transcript(transcript, folder)
    if diarization is not None:
        export_diarization(diarization, folder)
    if tree is not None:
        export_chapters(tree, folder)
    if speaker is not None:
        export_speaker_transcript(speaker, folder)
        if tree is not None:
            write_note(speaker, tree, layout.note_path(key))
        if stored("viz") is not None:
            write_page(layout.viz_dir, speaker, tree, stored("audio"))
