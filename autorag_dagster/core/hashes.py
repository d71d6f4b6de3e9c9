"""Content hashes of source files, recomputed only when a file's size or modification time changes.

The nightly schedule asks every night whether each audio file changed; hashing a library of
long recordings every night would read all of it. The index remembers (size, mtime_ns, sha256)
per path and hashes a file again only when its size or mtime differs.
"""

from __future__ import annotations

import json
from pathlib import Path

from autorag_dagster.core import atomic
from autorag_dagster.core.audio import sha256_file


class HashIndex:
    files_read = 0
    """Files read to hash them by every index in this process (a benchmark and tests read it)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._entries: dict[str, list] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._entries = {}
        self.hashed = 0  # files actually read this time
        self._dirty = False

    def sha256(self, file: str | Path) -> str:
        file = Path(file)
        stat = file.stat()
        key = str(file.resolve())
        entry = self._entries.get(key)
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = sha256_file(file)
        self.hashed += 1
        HashIndex.files_read += 1
        self._entries[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if self._dirty:
            atomic.write_json(self.path, self._entries)
            self._dirty = False
