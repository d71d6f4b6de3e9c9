"""What the folder sensor knows about each audio file, kept in the data folder, not in its cursor.

Dagster stores a sensor's cursor with every tick and limits its size, so a library of thousands
of files cannot keep a per-file list there. The state (per file: the last (size, mtime)
signature seen, the signature a run was requested for, why a file is left out; the files whose
results were kept after they left the folder) is written instead as a snapshot file named by
its content digest, and the cursor holds only that digest.

A snapshot is never overwritten: a tick that fails after writing a new one leaves the cursor on
the previous snapshot, which is still there, so nothing is lost or skipped. Writing a new
snapshot removes the older ones except the one the cursor named (two Dagster instances sharing
one data folder would each keep their own snapshot only between their own ticks).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autorag_dagster.core import atomic

SUFFIX = ".json"


@dataclass
class FolderState:
    seen: dict[str, list] = field(default_factory=dict)  # last (size, mtime) signature observed
    done: dict[str, list] = field(default_factory=dict)  # signature a run was requested (or not needed) for
    left_out: dict[str, list] = field(default_factory=dict)  # [signature, reason] of files that are not audio
    tidied: list[str] = field(default_factory=list)  # partitions whose removal was requested or kept

    @classmethod
    def from_dict(cls, data: dict) -> FolderState:
        return cls(
            seen=dict(data.get("seen", {})),
            done=dict(data.get("done", {})),
            left_out=dict(data.get("left_out", {})),
            tidied=list(data.get("tidied", [])),
        )

    def encoded(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def digest(self) -> str:
        return hashlib.sha256(self.encoded()).hexdigest()[:24]


class StateMissing(RuntimeError):
    """The cursor names a snapshot that is not in the data folder (the folder was emptied or moved)."""


class FolderStateStore:
    """Content-addressed snapshots of ``FolderState`` in ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, digest: str) -> Path:
        if not digest.isalnum():
            raise ValueError(f"not a snapshot digest: {digest!r}")
        return self.folder / f"{digest}{SUFFIX}"

    def load(self, digest: str | None) -> FolderState:
        """The snapshot named ``digest`` (an empty state for None); raises StateMissing when it is gone."""
        if not digest:
            return FolderState()
        path = self.path(digest)
        try:
            return FolderState.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise StateMissing(f"the folder sensor's state {path} is missing") from None
        except ValueError as exc:
            raise StateMissing(f"the folder sensor's state {path} cannot be read ({exc})") from None

    def save(self, state: FolderState, previous: str | None = None) -> str:
        """Write ``state`` (unless that snapshot exists) and return its digest; older snapshots go,
        except ``previous`` (the one the current cursor names, in case this tick does not commit)."""
        digest = state.digest()
        path = self.path(digest)
        if not path.exists():
            atomic.write_bytes(path, state.encoded())
        keep = {path.name} | ({self.path(previous).name} if previous else set())
        for old in self.folder.glob(f"*{SUFFIX}"):
            if old.name not in keep:
                old.unlink(missing_ok=True)
        return digest
