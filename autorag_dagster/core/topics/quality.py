"""How good a topic tree is against recordings whose subject spans are known.

Plain functions over times and strings, no model and no Dagster:

- ``boundary_f1``: interior level-1 boundaries matched one-to-one within a tolerance (8 s);
- ``pk``: Beeferman's Pk over time (the chance that two instants k seconds apart are wrongly
  put in the same or in different segments; 0 is perfect);
- ``names_subject`` / ``titles_naming_share``: whether a title names its subject, judged by
  the subject's keywords after simple stemming ("trees" matches "tree");
- ``prompt_echo``: text that repeats the prompts' scaffolding ("Part 2:", "Speaker 1 at 00:12",
  "00:30-01:00") instead of saying something;
- ``first_words``: a title that is only the opening words of its span or of the transcript.

``evaluate(tree, truth)`` bundles them into one ``TopicQuality`` for one tree and one ground
truth (anything with ``duration_s``, ``subjects`` as ``(start, end, subject)`` and ``keywords``:
``autorag_dagster.samples.Conversation`` or ``GroundTruth``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree

__all__ = [
    "NodeQuality",
    "TopicQuality",
    "boundary_f1",
    "content_words",
    "evaluate",
    "first_words",
    "interior",
    "match_subjects",
    "names_subject",
    "pk",
    "prompt_echo",
    "stem",
    "titles_naming_share",
]

Subject = tuple[float, float, str]  # (start, end, subject)

_EPS = 1e-6
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class Truth(Protocol):
    duration_s: float
    subjects: list[Subject]
    keywords: Mapping[str, Sequence[str]]


# --- boundaries ----------------------------------------------------------------------------------
def interior(starts: Iterable[float], duration: float | None = None) -> list[float]:
    """The boundaries between segments: segment starts other than 0.0 (and before ``duration``), sorted, unique."""
    out = sorted({round(float(s), 6) for s in starts if s > _EPS and (duration is None or s < duration - _EPS)})
    return out


def boundary_f1(
    pred_starts: Iterable[float], true_starts: Iterable[float], tolerance: float = 8.0
) -> tuple[float, float, float]:
    """(precision, recall, F1) of the predicted interior boundaries against the true ones.

    A predicted boundary counts when it lies within ``tolerance`` seconds of a true boundary
    not matched yet (one-to-one; for points on a line with one tolerance the greedy sweep in
    time order finds a largest matching). Starts at 0.0 are not boundaries. With no true and no
    predicted boundary the answer is (1, 1, 1); otherwise an empty side scores 0.
    """
    pred, true = interior(pred_starts), interior(true_starts)
    if not pred and not true:
        return 1.0, 1.0, 1.0
    matched = _matches(pred, true, tolerance)
    precision = matched / len(pred) if pred else 0.0
    recall = matched / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _matches(pred: list[float], true: list[float], tolerance: float) -> int:
    i = j = matched = 0
    while i < len(pred) and j < len(true):
        if abs(pred[i] - true[j]) <= tolerance + _EPS:
            matched, i, j = matched + 1, i + 1, j + 1
        elif pred[i] < true[j]:
            i += 1
        else:
            j += 1
    return matched


def pk(
    pred_starts: Iterable[float],
    true_starts: Iterable[float],
    duration: float,
    k: float | None = None,
    step: float = 1.0,
) -> float:
    """Beeferman's Pk over time: the share of probe pairs (t, t + k), t = 0, step, 2 step, ...
    while t + k <= duration, on which prediction and truth disagree about whether both instants
    lie in the same segment. ``k`` defaults to half the mean true segment length. 0 is perfect;
    a single segment scores about the share of probes that straddle a true boundary."""
    pred, true = interior(pred_starts, duration), interior(true_starts, duration)
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if k is None:
        k = duration / (len(true) + 1) / 2
    if k <= 0 or step <= 0:
        raise ValueError("k and step must be positive")
    probes = errors = 0
    t = 0.0
    while t + k <= duration + _EPS:
        same_true = bisect_right(true, t) == bisect_right(true, t + k)
        same_pred = bisect_right(pred, t) == bisect_right(pred, t + k)
        errors += same_true != same_pred
        probes += 1
        t = probes * step
    return errors / probes if probes else 0.0


# --- words ---------------------------------------------------------------------------------------
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "like",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "part",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "discussion",
        "discussing",
        "talk",
        "talks",
        "topic",
        "topics",
        "overview",
        "update",
        "updates",
    ]
)


def stem(word: str) -> str:
    """A light stemmer: plural, -ing and -ed endings and a final e, so that "trees", "tree",
    "planting" and "planted", "cycle" and "cycling" meet."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "xes", "ches", "shes", "zes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The stems of the words of ``text`` that are not stopwords."""
    return {stem(w) for w in words(text) if w not in STOPWORDS and not w.isdigit()}


def names_subject(title: str, keywords: Iterable[str]) -> bool:
    """True when ``title`` contains one of ``keywords`` (case-insensitive, after stemming)."""
    wanted = {stem(k) for keyword in keywords for k in words(keyword)}
    return bool(wanted & {stem(w) for w in words(title)})


# --- titles --------------------------------------------------------------------------------------
_ECHO = [
    re.compile(r"\bpart\s*\d*\s*:", re.IGNORECASE),  # "Part:", "Part 2:"
    re.compile(r"\bspeakers?\s*:", re.IGNORECASE),  # "speakers:", "Speaker:"
    re.compile(r"\bspeaker[ _]?\d+\b", re.IGNORECASE),  # "Speaker 1", "SPEAKER_00"
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*[-\u2013\u2014]\s*\d{1,2}:\d{2}"),  # "00:30-01:00"
    re.compile(r"\bat\s+\d{1,2}:\d{2}\b", re.IGNORECASE),  # "at 00:12"
    re.compile(r"^\s*\[?\d{1,2}:\d{2}\]?"),  # opens with a timestamp
    re.compile(r"\[\d+\]"),  # "[3]": a numbered line of the view
    re.compile(r"\b(?:candidate|bucket|transcript lines?)\s*\d+\b", re.IGNORECASE),
]


def prompt_echo(text: str) -> bool:
    """True when ``text`` repeats the prompts' scaffolding instead of describing content."""
    return any(pattern.search(text) for pattern in _ECHO)


def first_words(title: str, transcript_text: str, min_words: int = 2) -> bool:
    """True when ``title`` (at least ``min_words`` words) is just the opening words of
    ``transcript_text`` (case, punctuation and a trailing ellipsis ignored)."""
    head = words(title)
    if len(head) < min_words:
        return False
    return words(transcript_text)[: len(head)] == head


# --- matching nodes and subjects -------------------------------------------------------------------
def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def match_subjects(nodes: Sequence[TopicNode], subjects: Sequence[Subject]) -> list[str | None]:
    """For each node, the subject its span overlaps most (the earlier one on a tie; None if none)."""
    out: list[str | None] = []
    for node in nodes:
        best, best_overlap = None, 0.0
        for start, end, subject in subjects:
            overlap = _overlap(node.start, node.end, start, end)
            if overlap > best_overlap + _EPS:
                best, best_overlap = subject, overlap
        out.append(best)
    return out


def titles_naming_share(
    nodes: Sequence[TopicNode], subjects: Sequence[Subject], keywords: Mapping[str, Sequence[str]]
) -> float:
    """The share of ``nodes`` (level-1) whose title names the subject that the node overlaps most."""
    if not nodes:
        return 0.0
    named = sum(
        subject is not None and names_subject(node.title, keywords.get(subject, ()))
        for node, subject in zip(nodes, match_subjects(nodes, subjects))
    )
    return named / len(nodes)


# --- the bundle ----------------------------------------------------------------------------------
class NodeQuality(BaseModel):
    id: str
    level: int
    start: float
    end: float
    title: str
    subject: str | None = Field(None, description="The true subject the node overlaps most.")
    names_subject: bool
    prompt_echo: bool
    summary_echo: bool
    first_words: bool


class TopicQuality(BaseModel):
    """The quality figures of one topic tree against one ground truth (all measured, none estimated)."""

    duration_s: float
    true_subjects: int
    level1_nodes: int
    nodes: int = Field(description="All nodes of the tree, every level.")
    tolerance_s: float
    true_starts: list[float]
    pred_starts: list[float]
    boundary_precision: float
    boundary_recall: float
    boundary_f1: float
    pk: float
    pk_k_s: float = Field(description="The k of Pk, in seconds: half the mean true segment length.")
    titles_naming_share: float = Field(description="Share of level-1 titles that name their subject.")
    titles_naming: int
    prompt_echo_titles: int = Field(description="Titles of any level that repeat prompt scaffolding.")
    prompt_echo_summaries: int
    first_words_titles: int = Field(description="Titles of any level that are only the opening words of their span.")
    per_node: list[NodeQuality]

    def row(self) -> dict[str, Any]:
        """The headline figures, for a table."""
        return {
            "L1 / true": f"{self.level1_nodes} / {self.true_subjects}",
            "boundary F1": round(self.boundary_f1, 3),
            "Pk": round(self.pk, 3),
            "titles naming": round(self.titles_naming_share, 3),
            "echo titles": self.prompt_echo_titles,
            "first-words titles": self.first_words_titles,
        }


def _span_text(start: float, end: float, truth: Truth, transcript: SpeakerTranscript | None) -> str:
    if transcript is not None:
        return " ".join(u.text.strip() for u in transcript.utterances if start - _EPS <= u.start < end - _EPS)
    lines = getattr(truth, "lines", None) or []
    return " ".join(line.text for line in lines if start - _EPS <= line.start < end - _EPS)


def evaluate(
    tree: TopicTree, truth: Truth, *, transcript: SpeakerTranscript | None = None, tolerance: float = 8.0
) -> TopicQuality:
    """The figures of ``tree`` against ``truth``; the first-words test reads the span's text from
    ``transcript`` (what the model saw) when given, else from the truth's script lines."""
    subjects = list(truth.subjects)
    if not subjects:
        raise ValueError("the ground truth has no subject spans")
    duration = float(truth.duration_s)
    true_starts = [start for start, _, _ in subjects]
    # the first node opens the recording whatever its start says: only later starts are boundaries
    pred_starts = [0.0] + [node.start for node in tree.nodes[1:]]
    precision, recall, f1 = boundary_f1(pred_starts, true_starts, tolerance)
    k = duration / len(subjects) / 2
    whole_text = _span_text(0.0, float("inf"), truth, transcript)
    matched = match_subjects(tree.nodes, subjects)
    level1_subject = {node.id: subject for node, subject in zip(tree.nodes, matched)}
    per_node = []
    for node in tree.walk():
        subject = level1_subject.get(node.id)
        if node.level > 1:
            [subject] = match_subjects([node], subjects)
        span_text = _span_text(node.start, node.end, truth, transcript)
        per_node.append(
            NodeQuality(
                id=node.id,
                level=node.level,
                start=node.start,
                end=node.end,
                title=node.title,
                subject=subject,
                names_subject=subject is not None and names_subject(node.title, truth.keywords.get(subject, ())),
                prompt_echo=prompt_echo(node.title),
                summary_echo=prompt_echo(node.summary),
                first_words=first_words(node.title, span_text) or first_words(node.title, whole_text),
            )
        )
    level1 = [q for q in per_node if q.level == 1]
    naming = sum(q.names_subject for q in level1)
    return TopicQuality(
        duration_s=duration,
        true_subjects=len(subjects),
        level1_nodes=len(tree.nodes),
        nodes=len(per_node),
        tolerance_s=tolerance,
        true_starts=true_starts,
        pred_starts=pred_starts,
        boundary_precision=precision,
        boundary_recall=recall,
        boundary_f1=f1,
        pk=pk(pred_starts, true_starts, duration),
        pk_k_s=k,
        titles_naming_share=naming / len(level1) if level1 else 0.0,
        titles_naming=naming,
        prompt_echo_titles=sum(q.prompt_echo for q in per_node),
        prompt_echo_summaries=sum(q.summary_echo for q in per_node),
        first_words_titles=sum(q.first_words for q in per_node),
        per_node=per_node,
    )
