"""Scripted answers: tests make the server return exact raw content for matching requests.

A rule matches when its ``match`` text occurs in the last user message (the prompt for
/api/generate) or in the ``title`` of the request's JSON-schema format. Rules are tried in
the order they were added; ``times`` (default: forever) counts down and a spent rule is dropped;
``seconds`` (default 0) holds the answer that long, as a slow model would, so requests overlap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


class ScriptError(ValueError):
    pass


@dataclass
class Rule:
    match: str
    content: str
    times: int | None = None
    seconds: float = 0.0

    @classmethod
    def parse(cls, raw: Any) -> Rule:
        if not isinstance(raw, dict):
            raise ScriptError(f"a rule must be an object with 'match' and 'content', got {raw!r}")
        match, content, times = raw.get("match"), raw.get("content"), raw.get("times")
        seconds = raw.get("seconds", 0.0)
        if not isinstance(match, str) or not isinstance(content, str):
            raise ScriptError(f"rule {raw!r}: 'match' and 'content' must be strings")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ScriptError(f"rule {raw!r}: 'times' must be a positive integer or omitted (forever)")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 60:
            raise ScriptError(f"rule {raw!r}: 'seconds' must be a number from 0 to 60")
        return cls(match, content, times, float(seconds))


class ScriptBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    def add(self, rules: list[Any]) -> int:
        """Append rules (dicts or ``Rule``); returns how many rules are pending."""
        parsed = [r if isinstance(r, Rule) else Rule.parse(r) for r in rules]
        with self._lock:
            self._rules.extend(parsed)
            return len(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, text: str, format_title: str | None) -> Rule | None:
        """The first rule matching this request (consuming one use), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.match in text or (format_title is not None and rule.match in format_title):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
            return None
