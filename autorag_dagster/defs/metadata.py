"""Small formatters for the metadata a person reads in the Dagster UI."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from dagster import MetadataValue

from autorag_dagster.core.timefmt import clock as mmss
from autorag_dagster.core.types import NameSuggestion


def excerpt(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def links(paths: Mapping[str, str | Path]) -> MetadataValue:
    """Exports as a Markdown list of file links (the UI renders them as paths a person can open)."""
    lines = [f"- **{kind}**: `{Path(path).resolve()}`" for kind, path in paths.items()]
    return MetadataValue.md("\n".join(lines))


def talk_time_table(talk: Mapping[str, float]) -> MetadataValue:
    total = sum(talk.values()) or 1.0
    rows = ["| speaker | talk time | share |", "| --- | --- | --- |"]
    for speaker, seconds in sorted(talk.items(), key=lambda kv: -kv[1]):
        rows.append(f"| {speaker} | {mmss(seconds)} | {100 * seconds / total:.0f}% |")
    return MetadataValue.md("\n".join(rows))


def per_file_table(rows: list[Mapping[str, object]]) -> MetadataValue:
    """A Markdown table with one row per file (for steps that cover several partitions)."""
    if not rows:
        return MetadataValue.md("(no files)")
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(r.get(h, "")) for h in header) + " |" for r in rows]
    return MetadataValue.md("\n".join(lines))


def md_escape(text: str) -> str:
    """``text`` as literal Markdown on one line: the characters Markdown would act on escaped."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", " ".join(text.split()))


def name_suggestions_table(suggestions: Sequence[NameSuggestion]) -> MetadataValue:
    """The names the transcript suggests, one row per piece of evidence (none is applied)."""
    if not suggestions:
        return MetadataValue.md("(none)")
    rows = ["| speaker | suggested name | time | words |", "| --- | --- | --- | --- |"]
    for s in suggestions:
        rows.append(f"| {md_escape(s.speaker)} | {md_escape(s.name)} | {mmss(s.time)} | {md_escape(s.words)} |")
    return MetadataValue.md("\n".join(rows))
