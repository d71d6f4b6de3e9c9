"""Writes that a reader never sees half done: a unique temporary file beside the target, then a rename.

Every file the project writes for people or for later steps goes through here (exports, stored
asset values, the HTML pages, cached LLM answers, the local server's model records), so two
writers of the same path never share a temporary name and a crash leaves the old file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others (a web server, the UI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any, **dump_options: Any) -> Path:
    """``payload`` as UTF-8 JSON (non-ASCII kept); ``dump_options`` go to ``json.dumps`` (indent, sort_keys)."""
    return write_text(path, json.dumps(payload, ensure_ascii=False, **dump_options))
