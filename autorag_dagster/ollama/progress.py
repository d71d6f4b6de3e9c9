"""What a pull reports while it runs: one streamed line of /api/pull (the command line draws it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PullProgress:
    """One streamed line of /api/pull."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None
