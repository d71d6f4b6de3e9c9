"""Repair proposed boundaries into a tiling, validate a topic tree, render its outline.

Everything here is pure: the stages call ``tile`` after every boundary answer (and for every
fallback), so whatever the model said, the spans handed on are sorted, contiguous, inside the
parent, and none is shorter than the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from autorag_dagster.core.markdown import md_escape
from autorag_dagster.core.topics.buckets import build_view, fmt_time
from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree

Span = tuple[float, float]
MAX_DEPTH = 2


def tile(
    starts: Iterable[float],
    lo: float,
    hi: float,
    *,
    min_len: float,
    needs_more: Callable[[float], bool] | None = None,
    factor: float = 2.0,
) -> list[Span]:
    """Turn proposed start times into contiguous spans that tile ``[lo, hi]``.

    Starts are clamped to the span (out-of-span ones dropped), sorted and deduplicated; the
    first span always begins at ``lo`` and the last ends at ``hi``. A boundary is kept only if
    the spans on both sides are at least ``min_len`` long, or ``factor * min_len`` when
    ``needs_more(boundary)`` says the boundary has weak evidence (e.g. no change of speaker).
    """
    if not hi > lo:
        return []

    def need(t: float) -> float:
        return min_len * factor if needs_more is not None and t not in (lo, hi) and needs_more(t) else min_len

    candidates = sorted({float(t) for t in starts if isinstance(t, (int, float)) and math.isfinite(t) and lo < t < hi})
    kept = [lo]
    for t in candidates:
        if t - kept[-1] >= max(need(kept[-1]), need(t)) and hi - t >= need(t):
            kept.append(t)
    return list(zip(kept, [*kept[1:], hi]))


def nodes_for(spans: list[Span], *, parent: TopicNode | None = None) -> list[TopicNode]:
    prefix = f"{parent.id}." if parent else ""
    level = parent.level + 1 if parent else 1
    return [TopicNode(id=f"{prefix}{i}", level=level, start=a, end=b) for i, (a, b) in enumerate(spans, 1)]


def _tiling_problems(nodes: list[TopicNode], lo: float, hi: float, where: str, tol: float) -> list[str]:
    if not nodes:
        return [f"{where} has no nodes"]
    problems = []
    if abs(nodes[0].start - lo) > tol:
        problems.append(f"{where} starts at {nodes[0].start:.3f}, not {lo:.3f}")
    if abs(nodes[-1].end - hi) > tol:
        problems.append(f"{where} ends at {nodes[-1].end:.3f}, not {hi:.3f}")
    for prev, node in zip(nodes, nodes[1:]):
        if node.start > prev.end + tol:
            problems.append(f"gap between {prev.id} and {node.id}: {prev.end:.3f}..{node.start:.3f}")
        elif node.start < prev.end - tol:
            problems.append(f"{prev.id} and {node.id} overlap: {node.start:.3f} < {prev.end:.3f}")
    return problems


def check_tree(tree: TopicTree, *, tol: float = 1e-6, max_depth: int = MAX_DEPTH) -> list[str]:
    """Every way ``tree`` fails to be a valid topic tree; empty when it is valid."""
    problems: list[str] = []
    if tree.duration_s <= 0:
        return [] if not tree.nodes else [f"duration is {tree.duration_s} but there are {len(tree.nodes)} nodes"]
    if not tree.title.strip() or not tree.summary.strip():
        problems.append("the file has an empty title or summary")
    problems += _tiling_problems(tree.nodes, 0.0, tree.duration_s, "the level-1 topics", tol)

    def visit(nodes: list[TopicNode], parent: TopicNode | None) -> None:
        for i, node in enumerate(nodes, 1):
            expected_id = f"{parent.id}.{i}" if parent else str(i)
            expected_level = parent.level + 1 if parent else 1
            if node.id != expected_id or node.level != expected_level:
                problems.append(f"node {node.id} (level {node.level}) should be {expected_id} (level {expected_level})")
            if not node.end > node.start:
                problems.append(f"node {node.id} has no duration: {node.start:.3f}..{node.end:.3f}")
            if not node.title.strip():
                problems.append(f"node {node.id} has an empty title")
            if not node.summary.strip():
                problems.append(f"node {node.id} has an empty summary")
            if node.level > max_depth:
                problems.append(f"node {node.id} is deeper than {max_depth} levels")
            if len(node.children) == 1:
                problems.append(f"node {node.id} has a single child")
            if node.children:
                problems.extend(
                    _tiling_problems(node.children, node.start, node.end, f"the children of {node.id}", tol)
                )
                visit(node.children, node)

    visit(tree.nodes, None)
    return problems


def outline_markdown(tree: TopicTree) -> str:
    """The tree as a Markdown list: ``- MM:SS-MM:SS Title``, indented by level; the LLM's titles escaped."""
    lines = [f"**{md_escape(tree.title)}**", ""] if tree.title else []
    lines += [
        f"{'  ' * (n.level - 1)}- {fmt_time(n.start)}-{fmt_time(n.end)} {md_escape(n.title) if n.title else '(untitled)'}"
        for n in tree.walk()
    ]
    return "\n".join(lines)


def topic_quality_problems(
    tree: TopicTree,
    fallbacks: Iterable[object] | None,
    transcript: SpeakerTranscript,
    *,
    bucket_s: float = 15.0,
) -> list[str]:
    """What makes a valid tree a poor one: level 1 that fell back to the lexical segmentation (or
    any stage that fell back), titles not grounded in their span, titles or summaries that echo
    the prompt or copy their span's first words.

    ``fallbacks``: the run's ``TopicStats`` (its ``fallbacks``), or a list of ``Fallback`` or of
    dicts with ``stage`` and ``node`` (as stored in metadata); None when unknown.
    """
    from autorag_dagster.core.topics.answers import naming_problems
    from autorag_dagster.core.topics.prompts import summary_scaffold

    problems: list[str] = []
    listed = getattr(fallbacks, "fallbacks", fallbacks)
    counts: dict[str, int] = {}
    for f in listed or []:
        stage = f.get("stage") if isinstance(f, dict) else getattr(f, "stage", None)
        counts[str(stage)] = counts.get(str(stage), 0) + 1
    if counts.get("level1"):
        problems.append("level 1 fell back to the lexical segmentation (the model's choice was unusable)")
    others = {s: n for s, n in counts.items() if s != "level1"}
    if others:
        problems.append("fallbacks: " + ", ".join(f"{s} x{n}" for s, n in others.items()))
    view = build_view(transcript, bucket_s)
    for node in tree.walk():
        span = view.text(node.start, node.end)
        if not span.strip():
            continue
        bad_title, bad_summary = naming_problems(node.title, node.summary, span, summary_scaffold())
        problems += [f"node {node.id} {node.title!r}: {p}" for p in [*bad_title, *bad_summary]]
    return problems
