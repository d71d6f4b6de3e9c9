"""The topic stages: level-1 chapters, split decisions, level-2 sub-topics, titles and summaries, file summary.

Boundaries: candidates come from lexical cohesion (``segment``); the model picks the real subject
changes among them by number, under a schema that admits only valid numbers. When its answer is
unusable, the lexical choice stands (recorded as a fallback). Titles and summaries: the model
writes them from the part's own lines; an answer that is not grounded in the part, echoes the
prompt or copies the part's first words is re-asked once, then replaced by the part's key phrase
and its most central sentences (recorded as a fallback).

No prompt exceeds the context beside the answer's room (``StageRunner.fits``): a boundary choice
whose candidates do not fit in one prompt is asked in overlapping windows of candidates and the
choices are merged; a part too long to summarise in one prompt is summarised in overlapping
windows of its lines, then the window summaries are summarised (map-reduce); so is an outline too
long for the file's summary. A prompt that cannot fit even alone is an error naming the stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from pydantic import BaseModel, Field

from autorag_dagster.core.topics import prompts
from autorag_dagster.core.topics.answers import (
    fallback_file_title,
    fallback_summary,
    fallback_title,
    naming_problems,
    repair_text,
    subject_change_problems,
    text_problems,
)
from autorag_dagster.core.topics.buckets import (
    Line,
    TranscriptView,
    build_view,
    fmt_time,
    merge_turns,
    render_lines,
    tokens,
)
from autorag_dagster.core.topics.runner import Answer, StageRunner
from autorag_dagster.core.topics.schemas import (
    MAX_FREE_CHANGES,
    FileSummary,
    NodeSummary,
    SplitDecision,
    subject_changes_schema,
)
from autorag_dagster.core.topics.segment import Candidate, Cohesion, choose, units
from autorag_dagster.core.topics.tree import Span, nodes_for, tile
from autorag_dagster.core.types import SpeakerTranscript, TopicNode

EXCERPT_WORDS = 18

X = TypeVar("X")


class TopicConfig(BaseModel):
    """Knobs of the topic stages; the defaults suit recordings from a minute to a few hours."""

    num_ctx_l1: int | None = Field(
        None,
        ge=256,
        le=1_048_576,
        description="Optional larger context for the level-1 stage only (costs exactly one reload).",
    )
    bucket_s: float = Field(30.0, gt=0, description="Bucket of the level-1 view.")
    l2_bucket_s: float = Field(15.0, gt=0, description="Bucket of the finer view for level 2 and summaries.")
    min_l1_s: float = Field(30.0, gt=0, description="Shortest level-1 node (scaled down on short files).")
    min_l2_s: float = Field(20.0, gt=0, description="Shortest level-2 node (scaled down on short nodes).")
    min_floor_s: float = Field(8.0, gt=0, description="No node is ever shorter than this.")
    monologue_factor: float = Field(
        2.0, ge=1, description="A boundary with no change of speaker needs spans this many times the minimum."
    )
    l2_min_s: float = Field(120.0, gt=0, description="A level-1 node this long is considered for subdividing.")
    l2_rel: float = Field(
        0.25,
        gt=0,
        le=1,
        description="...and so is a shorter one that spans this share of the file with enough speaker turns.",
    )
    l2_min_turns: int = Field(2, ge=0, description="Speaker turns a relatively long node needs to be considered.")
    max_l1_topics: int = Field(12, ge=1)
    max_l2_topics: int = Field(6, ge=2)
    max_candidates: int = Field(12, ge=1, description="Most candidate boundaries shown to the model per call.")
    unit_s: float = Field(20.0, gt=0, description="Longer utterances are cut at sentence ends into units of cohesion.")
    keep_strong_changes: bool = Field(
        True,
        description="Whatever the model answers, keep the candidates the lexical segmentation chose where the words "
        "change strongly (depth at least strong_factor times the cutoff) or the change is announced (a discourse "
        "cue), and the clearest one; the model decides the other candidates over the cutoff (weaker ones are not "
        "offered). False for a model trusted to merge them: it is offered every candidate and decides alone.",
    )
    strong_factor: float = Field(1.5, gt=0, description="A candidate this many times the cutoff deep is strong.")
    give_up_after: int = Field(
        3,
        ge=0,
        description="When most of the first this many node summaries of a file are still rejected after their "
        "re-ask, the file's other nodes get the extractive title and summary without asking (each counted as a "
        "fallback); 0 asks for every node. A model that cannot write them should not cost minutes per file.",
    )
    stop_useless_reasks: bool = Field(
        True,
        description="When the re-asks of a file's probed summaries (or of all its summaries, for a file of few "
        "nodes) fixed none of the answers they were asked to fix, its later rejected answers are not re-asked "
        "(the re-ask of a model that ignores the named problems costs a whole answer and buys nothing).",
    )
    window_words: int = Field(
        60, ge=5, description="A long turn is cut into pieces of this many words when a part is summarised in windows."
    )

    def min_l1(self, duration: float) -> float:
        return max(self.min_floor_s, min(self.min_l1_s, duration / 5))

    def min_l2(self, span: float) -> float:
        return max(self.min_floor_s, min(self.min_l2_s, span / 3))


@dataclass
class FileContext:
    """What every stage reads about one file."""

    view: TranscriptView  # level-1 buckets: speakers and turns
    fine: TranscriptView  # level-2 buckets, also the text of summaries
    vocabulary: set[str]
    cohesion: Cohesion  # utterance units and their TF-IDF: candidates, key phrases, central sentences
    config: TopicConfig
    level1_source: str = "none"  # "llm", "lexical" (fallback or no candidate) or "single" (too short to divide)

    @classmethod
    def of(cls, transcript: SpeakerTranscript, config: TopicConfig) -> FileContext:
        pieces = units(transcript, max_s=config.unit_s)
        cuts = [u.start for u in pieces]
        view = build_view(transcript, config.bucket_s, cuts=cuts)
        return cls(
            view=view,
            fine=build_view(transcript, config.l2_bucket_s, cuts=cuts),
            # The speakers' given names are words a summary may use (they label the lines).
            vocabulary=set(tokens(view.text()))
            | {t for ln in view.lines if not ln.speaker.startswith("Speaker ") for t in tokens(ln.speaker)},
            cohesion=Cohesion(pieces),
            config=config,
        )

    @property
    def duration(self) -> float:
        return self.view.duration

    @cached_property
    def file_text(self) -> str:
        return self.fine.text()

    def weak(self, t: float) -> bool:
        return not self.view.is_turn(t)

    def span_text(self, start: float, end: float) -> str:
        return self.fine.text(start, end)


# --- boundaries: the model picks among lexical candidates ------------------------------------------


def candidate_views(
    ctx: FileContext, candidates: list[Candidate], threshold: float | None = None
) -> list[prompts.CandidateView]:
    """Each candidate with the words just before and just after it, and how much the words change there."""
    lines = ctx.cohesion.lines
    views = []
    for number, c in enumerate(candidates, 1):
        before = " ".join(ln.text for ln in lines[max(0, c.index - 3) : c.index]).split()[-EXCERPT_WORDS:]
        after_lines = lines[c.index : c.index + 3]
        after = " ".join(ln.text for ln in after_lines).split()[:EXCERPT_WORDS]
        strength = ""
        if threshold is not None:
            strong = ctx.config.strong_factor * threshold
            strength = "strong" if c.depth >= strong else "clear" if c.depth >= threshold else "weak"
            if c.cue and c.depth >= threshold:
                strength += ", announced"
        views.append(
            prompts.CandidateView(
                number=number,
                time=fmt_time(c.time),
                change=strength,
                before=("… " if len(before) == EXCERPT_WORDS else "") + " ".join(before),
                after=f"{after_lines[0].speaker}: " + " ".join(after) + " …",
            )
        )
    return views


def boundary_candidates(ctx: FileContext, lo: float, hi: float, *, min_len: float) -> list[Candidate]:
    """The candidates the model is shown: at least ``min_len`` from both ends, the deepest
    ``max_candidates`` of them, in time order."""
    found = [c for c in ctx.cohesion.candidates(lo, hi) if c.time - lo >= min_len and hi - c.time >= min_len]
    return sorted(sorted(found, key=lambda c: -c.depth)[: ctx.config.max_candidates], key=lambda c: c.time)


def snap(ctx: FileContext, times: list[float], lo: float, hi: float, *, depth: float) -> list[Candidate]:
    """Boundaries a model placed itself, each moved to the nearest utterance (unit) start inside
    ``(lo, hi)``; they count as clear changes (``depth``) when spacing decides between them."""
    lines = [(i, ln.start) for i, ln in enumerate(ctx.cohesion.lines) if lo < ln.start < hi]
    out: list[Candidate] = []
    for t in times:
        if lines and lo < t < hi:
            index, start = min(lines, key=lambda item: abs(item[1] - t))
            out.append(Candidate(index=index, time=start, depth=depth))
    return out


def boundaries(
    run: StageRunner,
    ctx: FileContext,
    lo: float,
    hi: float,
    *,
    level: int,
    min_len: float,
    max_topics: int,
    node: str | None = None,
    num_ctx: int | None = None,
) -> tuple[list[Span], str]:
    """Spans tiling ``[lo, hi)`` and where their starts came from: ``"llm"`` when the model's choice
    among the candidates was usable, ``"lexical"`` otherwise (a fallback when a call failed).

    Repair: spans shorter than ``min_len`` are merged away; a boundary without a change of speaker
    needs ``monologue_factor`` times that, unless the lexical segmentation chose it too."""

    def tiled(starts: list[float], source: str) -> tuple[list[Span], str]:
        strong = set(lexical)
        spans = tile(
            starts,
            lo,
            hi,
            min_len=min_len,
            needs_more=lambda t: t not in strong and ctx.weak(t),
            factor=ctx.config.monologue_factor,
        )
        return spans, source

    stage = "level1" if level == 1 else "level2"
    found = boundary_candidates(ctx, lo, hi, min_len=min_len)
    threshold = ctx.cohesion.cutoff(lo, hi)
    lexical = choose(found, lo, hi, min_len=min_len, max_topics=max_topics, threshold=threshold)

    if ctx.config.keep_strong_changes:
        # a model not trusted to merge strong changes is not offered weak ones either
        found = [c for c in found if c.depth >= threshold]
    max_changes = min(max_topics - 1, len(found))
    if not found or max_changes < 1:
        return tiled(lexical, "lexical")

    def prompt(window: list[Candidate], wlo: float, whi: float) -> prompts.Messages:
        return prompts.boundary_messages(
            candidate_views(ctx, window, threshold),
            level=level,
            start=wlo,
            end=whi,
            speakers=ctx.view.speakers_in(wlo, whi),
            max_changes=min(max_changes, len(window)),
            min_len=min_len,
            free=0 if ctx.config.keep_strong_changes else MAX_FREE_CHANGES,
        )

    messages = prompt(found, lo, hi)
    kept: list[float] = []
    if ctx.config.keep_strong_changes and len(lexical) > 1:
        # the changes a small model cannot be trusted to drop: strong or announced, chosen by the lexical segmentation
        strong = ctx.config.strong_factor * threshold
        clearest = max(found, key=lambda c: c.depth)
        kept = [c.time for c in found if c is clearest or (c.time in lexical and (c.depth >= strong or c.cue))]

    def judge(value) -> list[str]:
        return subject_change_problems(list(value.changes))

    def ask(window: list[Candidate], wlo: float, whi: float, messages: prompts.Messages) -> list[Candidate] | None:
        """The window's chosen candidates, or None when the answer is unusable (recorded as a fallback)."""
        free_within = None if ctx.config.keep_strong_changes else (wlo, whi)
        schema = subject_changes_schema(len(window), min(max_changes, len(window)), free_within)
        answer = run.ask(messages, schema, judge, stage=stage, num_ctx=num_ctx)
        if not answer.usable:
            run.fallback(stage, node, answer.problems)
            return None
        chosen = [window[n - 1] for n in answer.value.changes]
        return chosen + snap(ctx, getattr(answer.value, "other_changes", []), wlo, whi, depth=threshold)

    if run.fits(messages, num_ctx):
        windows = [(found, lo, hi, messages)]
    else:
        windows = candidate_windows(run, found, lo, hi, prompt, stage=stage, num_ctx=num_ctx)
        run.windowed(stage, len(windows))
    chosen: list[Candidate] = []
    usable = False
    for window, wlo, whi, window_messages in windows:
        picked = ask(window, wlo, whi, window_messages)
        usable = usable or picked is not None
        # an unusable window keeps the lexical choice inside it
        picked = [c for c in window if c.time in lexical] if picked is None else picked
        chosen += [c for c in picked if c not in chosen]
    if not usable:
        return tiled(lexical, "lexical")
    chosen += [c for c in found if c.time in kept and c not in chosen]
    # too close together: the kept ones first, then the deeper one wins, as in the lexical choice
    starts = choose(chosen, lo, hi, min_len=min_len, max_topics=max_topics, threshold=0.0, fixed=kept)
    return tiled(starts, "llm")


def candidate_windows(
    run: StageRunner,
    found: list[Candidate],
    lo: float,
    hi: float,
    prompt: Callable[[list[Candidate], float, float], prompts.Messages],
    *,
    stage: str,
    num_ctx: int | None,
) -> list[tuple[list[Candidate], float, float, prompts.Messages]]:
    """Consecutive runs of candidates, each as many as fit in one prompt, overlapping by one candidate
    (so every place is also seen with its neighbour in the next window); each with its stretch of the
    recording (from the candidate before it to the one after it) and its prompt."""

    def stretch(i: int, j: int) -> tuple[float, float]:
        return (found[i - 1].time if i > 0 else lo), (found[j].time if j < len(found) else hi)

    windows: list[tuple[list[Candidate], float, float, prompts.Messages]] = []
    i = 0
    while i < len(found):
        j = i + 1
        messages = prompt(found[i:j], *stretch(i, j))
        if not run.fits(messages, num_ctx):
            raise run.too_long(stage, messages, num_ctx)
        while j < len(found):
            longer = prompt(found[i : j + 1], *stretch(i, j + 1))
            if not run.fits(longer, num_ctx):
                break
            j, messages = j + 1, longer
        windows.append((found[i:j], *stretch(i, j), messages))
        if j >= len(found):
            break
        i = j - 1 if j - i > 1 else j
    return windows


def level1(run: StageRunner, ctx: FileContext) -> list[TopicNode]:
    """Stage 2: one call choosing the chapters of the whole file among the lexical candidates."""
    cfg, duration = ctx.config, ctx.duration
    if duration <= 0:
        return []
    min_len = cfg.min_l1(duration)
    if len(ctx.cohesion.lines) < 2 or duration < 2 * min_len:
        ctx.level1_source = "single"
        return nodes_for([(0.0, duration)])
    max_topics = max(1, min(cfg.max_l1_topics, int(duration // min_len)))
    spans, ctx.level1_source = boundaries(
        run,
        ctx,
        0.0,
        duration,
        level=1,
        min_len=min_len,
        max_topics=max_topics,
        num_ctx=run.num_ctx_l1 or run.num_ctx,
    )
    return nodes_for(spans)


def worth_splitting(ctx: FileContext, node: TopicNode) -> bool:
    """Long nodes, and nodes that are a large share of a short file and hold a conversation."""
    cfg, span = ctx.config, node.end - node.start
    if len(ctx.fine.within(node.start, node.end)) < 2 or span < 2 * cfg.min_l2(span):
        return False
    return span >= cfg.l2_min_s or (
        span >= cfg.l2_rel * ctx.duration and ctx.view.turns_in(node.start, node.end) >= cfg.l2_min_turns
    )


def decide_splits(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> list[TopicNode]:
    """Stage 3: batched yes/no (reason first) for every node worth considering that has at least one
    candidate boundary inside; returns the yes-nodes."""
    min_l2 = ctx.config.min_l2
    candidates = [
        n
        for n in nodes
        if worth_splitting(ctx, n) and boundary_candidates(ctx, n.start, n.end, min_len=min_l2(n.end - n.start))
    ]

    def decide(node: TopicNode) -> bool:
        """One question for the whole node; when its lines do not fit in one prompt, one per window of
        them (overlapping by a line), and the node is worth subdividing when any window says so."""
        lines = ctx.fine.within(node.start, node.end)

        def messages_of(part: list[Line]) -> prompts.Messages:
            start, end = (node.start, node.end) if part is lines else (part[0].start, part[-1].end)
            return prompts.split_messages(
                render_lines(part, numbered=False),
                start=start,
                end=end,
                speakers=ctx.view.speakers_in(start, end),
                min_len=ctx.config.min_l2(node.end - node.start),
            )

        windows = [lines] if run.fits(messages_of(lines)) else _windows(run, lines, messages_of, stage="split")
        run.windowed("split", len(windows))
        said: list[bool] = []
        for part in windows:
            answer = run.ask(
                messages_of(part),
                SplitDecision,
                lambda value: [] if value.reason.strip() else ["the reason is empty"],
                stage="split",
            )
            if answer.value is None:
                run.fallback("split", node.id, answer.problems)
            else:
                said.append(answer.value.subdivide)
        return any(said)

    return [n for n, yes in zip(candidates, run.client.fan_out(decide, candidates)) if yes]


def level2(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> None:
    """Stage 4: batched sub-topic choices among the candidates inside each chapter; a node keeps
    children only if at least two survive repair."""
    cfg = ctx.config

    def split(node: TopicNode) -> list[Span]:
        min_len = cfg.min_l2(node.end - node.start)
        max_topics = max(2, min(cfg.max_l2_topics, int((node.end - node.start) // min_len)))
        spans, _ = boundaries(
            run,
            ctx,
            node.start,
            node.end,
            level=2,
            min_len=min_len,
            max_topics=max_topics,
            node=node.id,
        )
        return spans

    for node, spans in zip(nodes, run.client.fan_out(split, nodes)):
        node.children = nodes_for(spans, parent=node) if len(spans) >= 2 else []


# --- titles and summaries ------------------------------------------------------------------------


def _settle(
    run: StageRunner,
    ctx: FileContext,
    stage: str,
    node: str | None,
    answer: Answer,
    span: str,
    speakers: list[str],
    make_fallback: Callable[[], tuple[str, str]],
    scaffold: str,
    vocabulary: set[str] | None = None,
) -> tuple[str, str]:
    """The answer's title and summary; what is still wrong after the re-ask is repaired or replaced
    by the fallback's part (title and summary separately, made only when needed), and recorded.
    ``vocabulary``: the words the model was given (default: the transcript's)."""
    if answer.value is None:
        run.fallback(stage, node, answer.problems)
        return make_fallback()
    title, summary = answer.value.title.strip(), answer.value.summary.strip()
    if not answer.problems:
        return title, summary
    run.fallback(stage, node, answer.problems)
    fallback = make_fallback()
    title, summary = repair_text(title, summary, vocabulary or ctx.vocabulary, speakers, fallback)
    bad_title, bad_summary = naming_problems(title, summary, span, scaffold)
    return (fallback[0] if bad_title else title), (fallback[1] if bad_summary else summary)


def _judge(ctx: FileContext, span: str, speakers: list[str], scaffold: str, vocabulary: set[str] | None = None):
    def judge(value: NodeSummary | FileSummary) -> list[str]:
        bad_title, bad_summary = naming_problems(value.title, value.summary, span, scaffold)
        known = vocabulary or ctx.vocabulary
        return [*text_problems(value.title, value.summary, known, speakers), *bad_title, *bad_summary]

    return judge


def summary_answer(
    run: StageRunner,
    ctx: FileContext,
    node: TopicNode,
    lines: list[Line],
    speakers: list[str],
    span: str,
    scaffold: str,
) -> Answer[NodeSummary]:
    """The node's title and summary from its lines in one prompt; when they do not fit, from
    overlapping windows of its turns (each summarised, in order), then one summary of those
    summaries (map-reduce, again in windows while the summaries do not fit)."""
    turns = merge_turns(lines)
    messages = prompts.summary_messages(render_lines(turns, numbered=False, timed=False), speakers=speakers)
    judge = _judge(ctx, span, speakers, scaffold)
    if run.fits(messages):
        return run.ask(messages, NodeSummary, judge, stage="summary")
    pieces = [piece for turn in turns for piece in _pieces(turn, ctx.config.window_words)]

    def window_prompt(part: list[Line]) -> prompts.Messages:
        return prompts.summary_messages(
            render_lines(part, numbered=False, timed=False), speakers=sorted({ln.speaker for ln in part})
        )

    windows = _windows(run, pieces, window_prompt, stage="summary")
    run.windowed("summary", len(windows))
    partial: list[str] = []
    for part in windows:
        part_span = " ".join(ln.text for ln in part)
        part_speakers = sorted({ln.speaker for ln in part})
        answer = run.ask(
            window_prompt(part), NodeSummary, _judge(ctx, part_span, part_speakers, scaffold), stage="summary"
        )
        # a window whose answer is unusable is represented by its most central sentences
        partial.append(answer.value.summary.strip() if answer.usable else fallback_summary(part, ctx.cohesion.tfidf))
    while True:
        merged = prompts.summary_merge_messages(partial, speakers=speakers)
        if run.fits(merged) or len(partial) < 2:
            return run.ask(merged, NodeSummary, judge, stage="summary")
        groups = _windows(
            run,
            partial,
            lambda group: prompts.summary_merge_messages(group, speakers=speakers),
            stage="summary",
            overlap=False,
        )
        if len(groups) >= len(partial):  # no two window summaries fit in one prompt: the extractive summary stands
            return Answer(None, [f"no two of the {len(partial)} window summaries fit in one prompt of num_ctx"])
        run.windowed("summary", len(groups))
        reduced = [
            run.ask(prompts.summary_merge_messages(g, speakers=speakers), NodeSummary, judge, stage="summary")
            for g in groups
        ]
        partial = [a.value.summary.strip() if a.usable else " ".join(g) for a, g in zip(reduced, groups)]


def _pieces(line: Line, words: int) -> list[Line]:
    """A turn cut into pieces of at most ``words`` words (times shared out by words)."""
    parts = line.text.split()
    if len(parts) <= words:
        return [line]
    step = (line.end - line.start) / len(parts)
    return [
        Line(
            line.start + i * step,
            line.start + min(i + words, len(parts)) * step,
            line.speaker,
            " ".join(parts[i : i + words]),
        )
        for i in range(0, len(parts), words)
    ]


def _windows(
    run: StageRunner,
    items: list[X],
    prompt: Callable[[list[X]], prompts.Messages],
    *,
    stage: str,
    overlap: bool = True,
) -> list[list[X]]:
    """Consecutive runs of ``items``, each as many as fit in one prompt; with ``overlap``, the next
    starts with the last item of the one before unless a run holds a single item (a reduce step,
    whose items are already summaries, does without). An item that does not fit alone is an error."""
    windows: list[list[X]] = []
    i = 0
    while i < len(items):
        j = i + 1
        if not run.fits(prompt(items[i:j])):
            raise run.too_long(stage, prompt(items[i:j]))
        while j < len(items) and run.fits(prompt(items[i : j + 1])):
            j += 1
        windows.append(items[i:j])
        if j >= len(items):
            break
        i = j - 1 if overlap and j - i > 1 else j
    return windows


def outline_windows(run: StageRunner, ctx: FileContext, sections: list[dict]) -> list[dict] | None:
    """An outline too long for the file's summary, reduced: windows of consecutive sections, each
    summarised as one section, until the outline fits; None when no two sections fit in one prompt."""
    speakers = ctx.view.speakers_in(0.0, ctx.duration)
    scaffold = prompts.file_scaffold()
    while not run.fits(prompts.file_messages(sections, duration=ctx.duration, speakers=speakers)):

        def prompt(group: list[dict]) -> prompts.Messages:
            return prompts.file_messages(group, duration=_seconds(group), speakers=speakers)

        groups = _windows(run, sections, prompt, stage="file", overlap=False)
        if len(groups) >= len(sections):
            return None
        run.windowed("file", len(groups))
        reduced = []
        for group in groups:
            start, end = group[0]["start"], group[-1]["end"]
            text = ctx.span_text(start, end)
            answer = run.ask(prompt(group), FileSummary, _judge(ctx, text, speakers, scaffold), stage="file")
            title, summary = (
                (answer.value.title.strip(), answer.value.summary.strip())
                if answer.usable
                else (group[0]["title"], " ".join(s["summary"] for s in group))
            )
            reduced.append(
                {"span": prompts.span_text(start, end), "start": start, "end": end, "title": title, "summary": summary}
            )
        sections = reduced
    return sections


def _seconds(group: list[dict]) -> float:
    return group[-1]["end"] - group[0]["start"]


def summarise(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> None:
    """Stage 5: batched title and summary per node, from the node's own lines only.

    The first ``give_up_after`` nodes are asked first; when most of their answers are still
    rejected after their re-ask, the other nodes are not asked (the same nodes are probed on every
    run, so the decision does not depend on which answer came back first). When their re-asks fixed
    none of the answers they were asked to fix, the other nodes' rejected answers, and the file
    summary's, are not re-asked either (each still a counted fallback)."""

    def write(node: TopicNode, ask: bool = True) -> bool:
        """Whether the model's answer was usable (False for a node not asked)."""
        lines = ctx.fine.within(node.start, node.end)
        span = " ".join(ln.text for ln in lines)
        speakers = ctx.view.speakers_in(node.start, node.end)

        def fallback() -> tuple[str, str]:
            return fallback_title(span, ctx.file_text), fallback_summary(lines, ctx.cohesion.tfidf)

        if not lines or not ask:
            if lines:
                run.fallback(
                    "summary", node.id, [f"not asked: most of the first {probe} summaries were rejected after a re-ask"]
                )
            node.title, node.summary = fallback()
            return False
        scaffold = prompts.summary_scaffold()
        answer = summary_answer(run, ctx, node, lines, speakers, span, scaffold)
        node.title, node.summary = _settle(run, ctx, "summary", node.id, answer, span, speakers, fallback, scaffold)
        return answer.usable

    def settle_reasks() -> None:
        """Later rejected answers are re-asked only while this file's re-asks have fixed one (or none were needed)."""
        run.reask = not (ctx.config.stop_useless_reasks and run.reasks_useless())

    spoken = [n for n in nodes if ctx.fine.within(n.start, n.end)]
    probe = ctx.config.give_up_after
    for node in nodes:
        if node not in spoken:
            write(node)
    if probe <= 0 or len(spoken) <= probe:
        run.client.fan_out(write, spoken)
    else:
        usable = run.client.fan_out(write, spoken[:probe])
        rest = spoken[probe:]
        if 2 * sum(usable) >= probe:
            settle_reasks()
            run.client.fan_out(write, rest)
        else:
            for node in rest:
                write(node, ask=False)
    settle_reasks()


def summarise_file(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> tuple[str, str]:
    """Stage 6: the file's title and summary, from the level-1 titles and summaries."""
    if not nodes:
        return "Empty recording", "The recording has no duration."
    if not ctx.view.lines:
        return "No speech", "No speech was transcribed in this recording."
    titles = [n.title for n in nodes]

    def fallback() -> tuple[str, str]:
        return (
            titles[0]
            if len(titles) == 1
            else fallback_file_title([ctx.span_text(n.start, n.end) for n in nodes], ctx.file_text),
            "The recording covers " + "; ".join(t[:1].lower() + t[1:] for t in titles) + ".",
        )

    speakers = ctx.view.speakers_in(0.0, ctx.duration)
    sections = [
        {
            "span": prompts.span_text(n.start, n.end),
            "start": n.start,
            "end": n.end,
            "title": n.title,
            "summary": n.summary,
        }
        for n in nodes
    ]
    # the outline's words are what the model was given: a title word ("Planting") is no invented name
    vocabulary = ctx.vocabulary | {t for n in nodes for t in tokens(f"{n.title} {n.summary}")}
    messages = prompts.file_messages(sections, duration=ctx.duration, speakers=speakers)
    reduced = sections if run.fits(messages) else outline_windows(run, ctx, sections)
    if reduced is None:  # the fallback's title and summary are made from the sections' titles
        answer: Answer[FileSummary] = Answer(None, ["no two sections of the outline fit in one prompt of num_ctx"])
    else:
        messages = prompts.file_messages(reduced, duration=ctx.duration, speakers=speakers)
        judge = _judge(ctx, ctx.file_text, speakers, prompts.file_scaffold(), vocabulary)
        answer = run.ask(messages, FileSummary, judge, stage="file")
    scaffold = prompts.file_scaffold()
    return _settle(run, ctx, "file", None, answer, ctx.file_text, speakers, fallback, scaffold, vocabulary)
