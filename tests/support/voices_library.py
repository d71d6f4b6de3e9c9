"""The generated voice library (``autorag_dagster.samples.VOICE_LIBRARY``), each file spoken once per test run."""

from __future__ import annotations

import shutil
from pathlib import Path

from autorag_dagster.samples import (
    VOICE_LIBRARY,
    Conversation,
    introductions,
    suggested_names,
    synthesize,
    true_voices,
)

LIBRARY_SCRIPTS = VOICE_LIBRARY

__all__ = ["LIBRARY_SCRIPTS", "introductions", "suggested_names", "true_voices", "write_library"]

_MADE: dict[Path, Conversation] = {}


def write_library(folder: Path, cache: Path | None = None) -> dict[str, Conversation]:
    """The library's recordings under ``folder`` (each generated once into ``cache`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, script in VOICE_LIBRARY.items():
        if cache is None:
            out[name] = synthesize(script, folder / name)
            continue
        made = cache / name
        if made not in _MADE:
            _MADE[made] = synthesize(script, made)
        shutil.copy(made, folder / name)
        out[name] = Conversation(**{**_MADE[made].__dict__, "path": folder / name})
    return out
