"""Durations and timestamps the way Ollama's Go server reads and writes them.

Requests carry ``keep_alive`` as a number of seconds or as a Go duration string; responses
carry durations as integer nanoseconds and times as RFC3339 UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

FOREVER = math.inf
"""keep_alive of a negative number or duration: the model stays loaded."""

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_UNIT = re.compile(r"[^\d.]*")
# What Go's time.Time can hold past now: about 292 years (math.MaxInt64 nanoseconds).
_FOREVER_DELTA = timedelta(seconds=(2**63 - 1) / 1e9)


class DurationError(ValueError):
    """A duration that Go's ``time.ParseDuration`` rejects; the message is Go's."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string such as ``"5m"``, ``"1h30m"``, ``"-1s"`` or ``"0"``."""
    quoted = f'"{text}"'
    rest, sign = text, 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise DurationError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number = _NUMBER.match(rest)
        whole, frac = number.group(1), number.group(2)
        if not whole and not frac:
            raise DurationError(f"time: invalid duration {quoted}")
        rest = rest[number.end() :]
        unit = _UNIT.match(rest).group()
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(f"{whole or 0}.{frac or 0}") * _UNITS[unit]
        rest = rest[len(unit) :]
    return sign * total


def go_type_name(value: object) -> str:
    """The Go type encoding/json decodes ``value`` into (for error texts)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "string"


def parse_keep_alive(value: object) -> float | None:
    """Seconds to keep a model loaded (``FOREVER`` for negative values); ``None`` when not given.

    Numbers are seconds; strings are Go durations, so ``"3600"`` (no unit) is rejected.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DurationError(f"Unsupported type: '{go_type_name(value)}'")
    seconds = float(value) if not isinstance(value, str) else parse_go_duration(value)
    return FOREVER if seconds < 0 else seconds


def nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123456Z``: RFC3339 in UTC with sub-second digits, as Ollama writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expiry(seconds: float, start: datetime | None = None) -> datetime:
    """The moment ``seconds`` after ``start`` (now by default); forever is ~292 years out, as in Go."""
    start = start or utcnow()
    return start + (_FOREVER_DELTA if math.isinf(seconds) else timedelta(seconds=seconds))
