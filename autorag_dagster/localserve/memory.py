"""Memory a runner really holds, measured as the growth of this process's resident set (Linux /proc).

/api/ps reports these figures for the real backends; a figure that is not measured says how it
was obtained in its name (``*_reported`` by the library, ``*_computed`` from the model's shape).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_STATM = Path("/proc/self/statm")


@dataclass(frozen=True)
class Memory:
    """What a runner holds: ``size`` is what /api/ps reports, ``source`` how it was obtained
    (``measured``, ``reported`` or ``computed``), ``figures`` the numbers behind it, each named
    ``*_measured``, ``*_reported`` or ``*_computed``."""

    size: int
    source: str
    figures: Mapping[str, int] = field(default_factory=dict)


def rss_bytes() -> int | None:
    """This process's resident set size now, or None where /proc is not available."""
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class RssGrowth:
    """Bytes the resident set grew by while ``measure()`` blocks ran (None when it cannot be measured)."""

    bytes: int | None = 0

    @contextmanager
    def measure(self) -> Iterator[None]:
        before = rss_bytes()
        try:
            yield
        finally:
            after = rss_bytes()
            if before is None or after is None or self.bytes is None:
                self.bytes = None
            else:
                self.bytes += max(0, after - before)


def runner_memory(growth: RssGrowth, reported: int, reported_name: str) -> Memory:
    """The measured RSS growth when there is one, else the library's own figure."""
    figures = {reported_name: reported}
    if growth.bytes is None:
        return Memory(reported, "reported", figures)
    return Memory(growth.bytes, "measured", {"rss_growth_bytes_measured": growth.bytes, **figures})
