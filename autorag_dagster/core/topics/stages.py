"""The LLM stages of the topic tree and the runner that talks to the model for them.

``StageRunner.ask`` is the one way a stage gets an answer: the answer cache first; on a miss
the model is loaded (lazily, so a fully cached file never loads it), the client validates the
answer against the schema (re-asking itself), and the stage's judge checks it for sense, with
one re-ask that names the problems. Whatever is left unusable is replaced by a fallback that is
recorded. Connection, busy and missing-model errors are not caught here: they reach the user.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from autorag_dagster.core.topics import prompts
from autorag_dagster.core.topics.answers import (
    boundary_problems,
    fallback_summary,
    fallback_title,
    repair_text,
    text_problems,
)
from autorag_dagster.core.topics.buckets import Line, TranscriptView, render_lines
from autorag_dagster.core.topics.cache import AnswerCache
from autorag_dagster.core.topics.schemas import FileSummary, NodeSummary, SplitDecision, topic_starts_schema
from autorag_dagster.core.topics.tree import Span, equal_spans, nodes_for, tile
from autorag_dagster.core.types import TopicNode
from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import LLMOutputError
from autorag_dagster.gpu import GpuTenancy

T = TypeVar("T", bound=BaseModel)


class TopicConfig(BaseModel):
    """Knobs of the topic stages; the defaults suit recordings from a minute to a few hours."""

    num_ctx_l1: int | None = Field(
        None, ge=256, le=1_048_576,
        description="Optional larger context for the level-1 stage only (costs exactly one reload).",
    )
    bucket_s: float = Field(30.0, gt=0, description="Bucket of the level-1 view.")
    l2_bucket_s: float = Field(15.0, gt=0, description="Bucket of the finer view for level 2 and summaries.")
    min_l1_s: float = Field(45.0, gt=0, description="Shortest level-1 node (scaled down on short files).")
    min_l2_s: float = Field(20.0, gt=0, description="Shortest level-2 node (scaled down on short nodes).")
    min_floor_s: float = Field(8.0, gt=0, description="No node is ever shorter than this.")
    monologue_factor: float = Field(
        2.0, ge=1, description="A boundary with no change of speaker needs spans this many times the minimum."
    )
    l2_min_s: float = Field(120.0, gt=0, description="A level-1 node this long is considered for subdividing.")
    l2_rel: float = Field(
        0.25, gt=0, le=1,
        description="...and so is a shorter one that spans this share of the file with enough speaker turns.",
    )
    l2_min_turns: int = Field(2, ge=0, description="Speaker turns a relatively long node needs to be considered.")
    max_l1_topics: int = Field(12, ge=1)
    max_l2_topics: int = Field(6, ge=2)
    fallback_chunk_s: float = Field(300.0, gt=0, description="Chunk length of the level-1 fallback.")
    chars_per_token: float = Field(3.0, gt=0, description="Conservative estimate to keep prompts inside num_ctx.")
    reserve_tokens: int = Field(1024, ge=0, description="Context kept for the instructions and the answer.")

    def min_l1(self, duration: float) -> float:
        return max(self.min_floor_s, min(self.min_l1_s, duration / 4))

    def min_l2(self, span: float) -> float:
        return max(self.min_floor_s, min(self.min_l2_s, span / 3))

    def max_chars(self, num_ctx: int) -> int:
        return max(1000, int((num_ctx - self.reserve_tokens) * self.chars_per_token))


class Fallback(BaseModel):
    stage: str
    node: str | None = None
    reason: str


@dataclass
class Answer(Generic[T]):
    """The last answer (None when none matched the schema) and what is still wrong with it."""

    value: T | None
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.value is not None and not self.problems


def model_fingerprint(client: OllamaClient) -> str:
    """A content address of the LLM: the hash of its /api/show answer (weights' details, template,
    parameters, modification time), so a re-pulled or different model never reuses old answers."""
    shown = client.show(client.llm_model)
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()


class LlmResidency:
    """The LLM's stay on the GPU across one file or many: loaded through the tenancy on the
    first cache miss with the num_ctx asked for, reloaded only when num_ctx changes (each
    reload listed in ``loads``), evicted on ``close`` (the tenancy's ``finally``).

    One residency shared by the files of a run keeps the model loaded once for all of them.
    """

    def __init__(self, client: OllamaClient, tenancy: GpuTenancy):
        self.client, self.tenancy = client, tenancy
        self.loads: list[dict] = []
        self._loaded_ctx: int | None = None
        self._stack = ExitStack()
        self._lock = threading.Lock()  # held while a load runs, so concurrent misses wait for it

    def ensure(self, num_ctx: int) -> None:
        """A caller that already holds the ``llm`` tenant has warmed it with the run's num_ctx."""
        with self._lock:
            if self._loaded_ctx is None and self.tenancy.active == "llm":
                self._loaded_ctx = self.client.num_ctx
            if self._loaded_ctx == num_ctx:
                return
            started = time.monotonic()
            if self._loaded_ctx is None:
                self._stack.enter_context(self.tenancy.tenant("llm", num_ctx=num_ctx))
                reason = "first request that missed the cache"
            else:
                self.client.warm(num_ctx=num_ctx)
                reason = f"num_ctx changes from {self._loaded_ctx} to {num_ctx}"
            self.loads.append({"num_ctx": num_ctx, "seconds": round(time.monotonic() - started, 3), "reason": reason})
            self._loaded_ctx = num_ctx

    def close(self) -> None:
        """Leave the tenant if this residency entered it, which evicts the model."""
        self._stack.close()
        self._loaded_ctx = None

    def __enter__(self) -> LlmResidency:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StageRunner:
    """Cache, residency, re-asks and fallback bookkeeping for one file's stages."""

    def __init__(
        self,
        client: OllamaClient,
        tenancy: GpuTenancy,
        cache: AnswerCache | None,
        *,
        num_ctx_l1: int | None = None,
        residency: LlmResidency | None = None,
    ):
        self.client, self.tenancy, self.cache = client, tenancy, cache
        self.num_ctx, self.num_ctx_l1 = client.num_ctx, num_ctx_l1
        self.fingerprint = model_fingerprint(client) if cache is not None else ""
        self.fallbacks: list[Fallback] = []
        self.cache_hits = self.cache_misses = self.semantic_retries = 0
        self.in_flight = self.max_in_flight = 0
        self._owns_residency = residency is None
        self.residency = residency or LlmResidency(client, tenancy)
        self._first_load = len(self.residency.loads)
        self._lock = threading.Lock()  # counters and lists, shared by the fan-out threads

    # --- residency ---------------------------------------------------------------------------

    @property
    def loads(self) -> list[dict]:
        """The loads and reloads this file's stages caused."""
        return self.residency.loads[self._first_load :]

    def _ensure_loaded(self, num_ctx: int) -> None:
        self.residency.ensure(num_ctx)

    def close(self) -> None:
        """Evict the model, unless the residency is shared with other files (its owner closes it)."""
        if self._owns_residency:
            self.residency.close()

    # --- asking --------------------------------------------------------------------------------

    def _cached(self, key: str, schema: type[T]) -> tuple[T | None, str] | None:
        """A stored answer as ``_chat`` returns it; None for a miss or an entry that no longer validates."""
        entry = self.cache.get(key)
        if entry is not None and isinstance(entry.get("error"), str):
            return None, entry["error"]
        if entry is not None and isinstance(entry.get("raw"), str):
            try:
                return schema.model_validate_json(entry["raw"]), entry["raw"]
            except ValidationError:
                return None
        return None

    def _chat(self, messages: prompts.Messages, schema: type[T], num_ctx: int) -> tuple[T | None, str]:
        """(value, raw) from the cache or the model; (None, why) when no answer matched the schema."""
        key = ""
        if self.cache is not None:
            options = {"num_ctx": num_ctx, "temperature": self.client.temperature, "think": False}
            key = AnswerCache.key(
                model_digest=self.fingerprint, options=options, messages=messages, schema=schema.model_json_schema()
            )
            hit = self._cached(key, schema)
            if hit is not None:
                with self._lock:
                    self.cache_hits += 1
                return hit
        with self._lock:
            self.cache_misses += 1
        self._ensure_loaded(num_ctx)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            result = self.client.chat_structured(messages, schema, num_ctx=num_ctx)
            value, raw, entry = result.value, result.raw, {"raw": result.raw}
        except LLMOutputError as exc:
            value, raw, entry = None, str(exc), {"error": str(exc)}
        finally:
            with self._lock:
                self.in_flight -= 1
        if self.cache is not None:
            self.cache.put(key, entry)
        return value, raw

    def ask(
        self,
        messages: prompts.Messages,
        schema: type[T],
        judge: Callable[[T], list[str]],
        *,
        num_ctx: int | None = None,
    ) -> Answer[T]:
        """An answer judged for sense, re-asked once with the problems named if it makes none."""
        num_ctx = num_ctx or self.num_ctx
        value, raw = self._chat(messages, schema, num_ctx)
        if value is None:
            return Answer(None, [raw])
        problems = judge(value)
        if not problems:
            return Answer(value)
        with self._lock:
            self.semantic_retries += 1
        again, raw_again = self._chat(prompts.reask_messages(messages, raw, problems), schema, num_ctx)
        if again is None:
            return Answer(value, [*problems, raw_again])
        return Answer(again, judge(again))

    def fallback(self, stage: str, node: str | None, problems: list[str]) -> None:
        with self._lock:
            self.fallbacks.append(Fallback(stage=stage, node=node, reason="; ".join(problems)[:500]))


# --- the stages --------------------------------------------------------------------------------


@dataclass
class FileContext:
    """What every stage reads about one file."""

    view: TranscriptView  # level-1 buckets
    fine: TranscriptView  # level-2 buckets, also the text of summaries
    vocabulary: set[str]
    snap: list[float]  # utterance starts, where fallback boundaries land
    config: TopicConfig

    @property
    def duration(self) -> float:
        return self.view.duration

    def weak(self, t: float) -> bool:
        return not self.view.is_turn(t)


def _starts(lines: list[Line], answer: Answer) -> list[float]:
    return [lines[t.first_line - 1].start for t in answer.value.topics]


def _boundary_judge(n_lines: int):
    return lambda value: boundary_problems([t.first_line for t in value.topics], n_lines)


def level1(run: StageRunner, ctx: FileContext) -> list[TopicNode]:
    """Stage 2: one call for the chapters of the whole file."""
    cfg, duration = ctx.config, ctx.duration
    if duration <= 0:
        return []
    min_len = cfg.min_l1(duration)
    lines = ctx.view.lines
    if len(lines) < 2 or duration < 2 * min_len:
        return nodes_for([(0.0, duration)])
    num_ctx = run.num_ctx_l1 or run.num_ctx
    max_topics = max(1, min(cfg.max_l1_topics, int(duration // min_len)))
    messages = prompts.boundary_messages(
        render_lines(lines, max_chars=cfg.max_chars(num_ctx)), level=1, start=0.0, end=duration,
        n_lines=len(lines), speakers=ctx.view.speakers_in(0.0, duration), max_topics=max_topics, min_len=min_len,
    )
    answer = run.ask(messages, topic_starts_schema(len(lines), max_topics), _boundary_judge(len(lines)), num_ctx=num_ctx)
    if answer.usable:
        starts = _starts(lines, answer)
    else:
        run.fallback("level1", None, answer.problems)
        n = max(1, round(duration / cfg.fallback_chunk_s))
        starts = [a for a, _ in equal_spans(0.0, duration, n, ctx.snap, min_len=min_len)]
    spans = tile(starts, 0.0, duration, min_len=min_len, needs_more=ctx.weak, factor=cfg.monologue_factor)
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
    """Stage 3: batched yes/no (reason first) for every node worth considering; returns the yes-nodes."""
    candidates = [n for n in nodes if worth_splitting(ctx, n)]

    def decide(node: TopicNode) -> bool:
        lines = ctx.fine.within(node.start, node.end)
        messages = prompts.split_messages(
            render_lines(lines, numbered=False, max_chars=ctx.config.max_chars(run.num_ctx)),
            start=node.start, end=node.end, speakers=ctx.view.speakers_in(node.start, node.end),
            min_len=ctx.config.min_l2(node.end - node.start),
        )
        answer = run.ask(messages, SplitDecision, lambda value: [] if value.reason.strip() else ["the reason is empty"])
        if answer.value is None:
            run.fallback("split", node.id, answer.problems)
            return False
        return answer.value.subdivide

    return [n for n, yes in zip(candidates, run.client.fan_out(decide, candidates)) if yes]


def level2(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> None:
    """Stage 4: batched sub-topic boundaries; a node keeps children only if at least two survive repair."""
    cfg = ctx.config

    def split(node: TopicNode) -> list[Span]:
        lines = ctx.fine.within(node.start, node.end)
        min_len = cfg.min_l2(node.end - node.start)
        max_topics = max(2, min(cfg.max_l2_topics, int((node.end - node.start) // min_len)))
        messages = prompts.boundary_messages(
            render_lines(lines, max_chars=cfg.max_chars(run.num_ctx)), level=2, start=node.start, end=node.end,
            n_lines=len(lines), speakers=ctx.view.speakers_in(node.start, node.end), max_topics=max_topics,
            min_len=min_len,
        )
        answer = run.ask(messages, topic_starts_schema(len(lines), max_topics), _boundary_judge(len(lines)))
        if not answer.usable:
            run.fallback("level2", node.id, answer.problems)
            return []
        return tile(
            _starts(lines, answer), node.start, node.end, min_len=min_len, needs_more=ctx.weak,
            factor=cfg.monologue_factor,
        )

    for node, spans in zip(nodes, run.client.fan_out(split, nodes)):
        node.children = nodes_for(spans, parent=node) if len(spans) >= 2 else []


def summarise(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> None:
    """Stage 5: batched title and summary per node; the prompts differ only in their tail."""

    def write(node: TopicNode) -> None:
        lines = ctx.fine.within(node.start, node.end)
        speakers = ctx.view.speakers_in(node.start, node.end)
        fallback = fallback_title(lines), fallback_summary(lines)
        if not lines:
            node.title, node.summary = fallback
            return
        messages = prompts.summary_messages(
            render_lines(lines, numbered=False, max_chars=ctx.config.max_chars(run.num_ctx)),
            start=node.start, end=node.end, speakers=speakers,
        )
        answer = run.ask(
            messages, NodeSummary, lambda v: text_problems(v.title, v.summary, ctx.vocabulary, speakers)
        )
        if answer.value is None:
            run.fallback("summary", node.id, answer.problems)
            node.title, node.summary = fallback
            return
        node.title, node.summary = answer.value.title.strip(), answer.value.summary.strip()
        if answer.problems:
            run.fallback("summary", node.id, answer.problems)
            node.title, node.summary = repair_text(node.title, node.summary, ctx.vocabulary, speakers, fallback)

    run.client.fan_out(write, nodes)


def summarise_file(run: StageRunner, ctx: FileContext, nodes: list[TopicNode]) -> tuple[str, str]:
    """Stage 6: the file's title and summary, from the level-1 titles and summaries."""
    if not nodes:
        return "Empty recording", "The recording has no duration."
    if not ctx.view.lines:
        return "No speech", "No speech was transcribed in this recording."
    titles = [n.title for n in nodes]
    fallback = (titles[0] if len(titles) == 1 else "; ".join(titles[:2]), "Topics: " + "; ".join(titles) + ".")
    speakers = ctx.view.speakers_in(0.0, ctx.duration)
    sections = [{"span": prompts.span_text(n.start, n.end), "title": n.title, "summary": n.summary} for n in nodes]
    answer = run.ask(
        prompts.file_messages(sections, duration=ctx.duration, speakers=speakers),
        FileSummary,
        lambda v: text_problems(v.title, v.summary, ctx.vocabulary, speakers),
    )
    if answer.value is None:
        run.fallback("file", None, answer.problems)
        return fallback
    title, summary = answer.value.title.strip(), answer.value.summary.strip()
    if answer.problems:
        run.fallback("file", None, answer.problems)
        title, summary = repair_text(title, summary, ctx.vocabulary, speakers, fallback)
    return title, summary
