"""Times as people read them in tables and pages."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` past an hour."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
