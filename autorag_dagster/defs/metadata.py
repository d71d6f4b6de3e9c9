"""Small formatters for the metadata a person reads in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dagster import MetadataValue

from autorag_dagster.core.markdown import md_escape
from autorag_dagster.core.timefmt import clock as mmss
from autorag_dagster.core.types import NameSuggestion, Utterance


def excerpt(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def links(paths: Mapping[str, str | Path]) -> MetadataValue:
    """Exports as a Markdown list of file links (the UI renders them as paths a person can open)."""
    lines = [f"- **{kind}**: `{Path(path).resolve()}`" for kind, path in paths.items()]
    return MetadataValue.md("\n".join(lines))


def utterance_excerpt(utterances: Sequence[Utterance], count: int = 8) -> MetadataValue:
    """The first utterances as ``**speaker** [MM:SS]: text`` paragraphs; what was said is escaped."""
    shown = [
        f"**{md_escape(u.speaker)}** [{mmss(u.start)}]: {md_escape(excerpt(u.text, 160))}" for u in utterances[:count]
    ]
    return MetadataValue.md("\n\n".join(shown) or "(no speech)")


def talk_time_table(talk: Mapping[str, float]) -> MetadataValue:
    total = sum(talk.values()) or 1.0
    rows = ["| speaker | talk time | share |", "| --- | --- | --- |"]
    for speaker, seconds in sorted(talk.items(), key=lambda kv: -kv[1]):
        rows.append(f"| {md_escape(speaker)} | {mmss(seconds)} | {100 * seconds / total:.0f}% |")
    return MetadataValue.md("\n".join(rows))


def per_file_table(rows: list[Mapping[str, object]]) -> MetadataValue:
    """A Markdown table with one row per file (for steps that cover several partitions); every
    header and cell is escaped, so a file name or a text with ``|`` stays in its cell."""
    if not rows:
        return MetadataValue.md("(no files)")
    header = list(rows[0])
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(md_escape(r.get(h, "")) for h in header) + " |" for r in rows]
    return MetadataValue.md("\n".join(lines))


def name_suggestions_table(suggestions: Sequence[NameSuggestion]) -> MetadataValue:
    """The names the transcript suggests, one row per piece of evidence (none is applied)."""
    if not suggestions:
        return MetadataValue.md("(none)")
    rows = ["| speaker | suggested name | time | words |", "| --- | --- | --- | --- |"]
    for s in suggestions:
        rows.append(f"| {md_escape(s.speaker)} | {md_escape(s.name)} | {mmss(s.time)} | {md_escape(s.words)} |")
    return MetadataValue.md("\n".join(rows))
