"""Topic boundaries from lexical cohesion, without any model (TextTiling over utterance units).

The units are the lines of a transcript view (each starts at an utterance, a change of speaker
or a bucket edge), so every candidate boundary is the start of a line. For each gap between two
units, the TF-IDF vectors of a block of words before and a block after are compared; where the
similarity dips, the vocabulary changes. A gap's depth score is how far the similarity falls
from the nearest peaks on either side (Hearst's TextTiling). ``candidates`` lists the dips;
``choose`` keeps those deeper than ``mean - std/2`` of all the gaps' depths, and at least half
as deep as the deepest (and over an absolute floor, so one subject stays one topic), the deepest first, spaced by the minimum topic length
and capped at the maximum number of topics. Milliseconds for hours of speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autorag_dagster.core.topics.buckets import Line, speaker_labels
from autorag_dagster.core.topics.lexical import TfIdf, cosine, opens_with_cue
from autorag_dagster.core.types import SpeakerTranscript

MIN_DEPTH = 0.12
"""A dip shallower than this is noise however the others compare: a single subject stays one topic."""

RELATIVE_DEPTH = 0.5
"""A boundary is at least half as clear as the clearest one of its span (short meetings have many
shallow dips; a long one with many subjects has many deep ones)."""

MIN_CANDIDATE_DEPTH = 0.05
"""Dips shallower than this are not even candidates (a repeated vocabulary wobbles by less)."""

CUE_BONUS = 0.2
"""Added to the depth of a gap whose next unit opens with a discourse cue ("now", "finally", "next",
"moving on", "let's turn to" ...): in speech, subjects are announced more than they are implied."""


def units(transcript: SpeakerTranscript, *, max_s: float = 20.0) -> list[Line]:
    """The transcript's utterances as lines; one longer than ``max_s`` is cut at sentence ends
    (at word boundaries when it has none) into pieces of about ``max_s / 2`` or more, so a long
    monologue still offers candidates, each at the start of a sentence."""
    labels = speaker_labels(transcript)
    out: list[Line] = []
    for utt in sorted(transcript.utterances, key=lambda u: u.start):
        speaker = labels[utt.speaker]
        timed = [(w.start, max(w.end, w.start), w.text.strip()) for w in utt.words if w.text.strip()]
        if not timed:
            parts = utt.text.split()
            step = max(utt.end - utt.start, 0.0) / max(len(parts), 1)
            timed = [(utt.start + i * step, utt.start + (i + 1) * step, p) for i, p in enumerate(parts)]
        if not timed:
            continue
        piece: list[tuple[float, float, str]] = []
        for i, word in enumerate(timed):
            piece.append(word)
            span = piece[-1][1] - piece[0][0]
            sentence_end = word[2][-1:] in ".?!"
            rest = timed[-1][1] - word[1]
            if (
                i + 1 < len(timed)
                and rest >= max_s / 4
                and ((sentence_end and span >= max_s / 2) or span >= 1.5 * max_s)
            ):
                out.append(Line(piece[0][0], piece[-1][1], speaker, " ".join(w[2] for w in piece)))
                piece = []
        if piece:
            out.append(Line(piece[0][0], piece[-1][1], speaker, " ".join(w[2] for w in piece)))
    return out


@dataclass(frozen=True)
class Candidate:
    """A possible topic start: before ``lines[index]`` at ``time``, with its depth score (0..2,
    plus ``CUE_BONUS`` where the line opens with a discourse cue)."""

    index: int
    time: float
    depth: float
    cue: bool = False  # the line opens with a discourse cue: the subject change is announced


class Cohesion:
    """TF-IDF of one file's lines (IDF over the whole file), for candidates inside any span of it."""

    def __init__(self, lines: Sequence[Line]):
        self.lines = list(lines)
        self.tfidf = TfIdf([ln.text for ln in self.lines])
        self.word_counts = [len(terms) for terms in self.tfidf.terms_of]

    def _inside(self, lo: float, hi: float) -> list[int]:
        return [i for i, ln in enumerate(self.lines) if lo - 1e-6 <= ln.start < hi - 1e-6]

    def block_terms(self, indices: list[int]) -> int:
        """Content words per block: about a tenth of the span's, between 12 and 150."""
        total = sum(self.word_counts[i] for i in indices)
        return int(min(150, max(12, total / 10)))

    def gap_similarities(self, indices: list[int], block: int) -> list[float]:
        """Cosine similarity across each gap ``indices[g-1] | indices[g]``, g = 1..n-1."""
        sims = []
        for g in range(1, len(indices)):
            left = self._block(indices[:g][::-1], block)
            right = self._block(indices[g:], block)
            sims.append(cosine(left, right))
        return sims

    def _block(self, ordered: list[int], block: int) -> np.ndarray:
        vector = np.zeros(len(self.tfidf.vocabulary))
        taken = 0
        for i in ordered:
            vector = vector + self.tfidf.matrix[i] if len(vector) else vector
            taken += self.word_counts[i]
            if taken >= block:
                break
        return vector

    def gap_depths(self, lo: float, hi: float) -> list[tuple[int, float, bool]]:
        """(line index after the gap, depth score + cue bonus, whether that line opens with a cue)
        for every gap between the lines inside ``[lo, hi)``."""
        indices = self._inside(lo, hi)
        if len(indices) < 2:
            return []
        sims = self.gap_similarities(indices, self.block_terms(indices))
        gaps = []
        for g, depth in enumerate(depth_scores(sims)):
            cue = opens_with_cue(self.lines[indices[g + 1]].text)
            gaps.append((indices[g + 1], depth + (CUE_BONUS if cue else 0.0), cue))
        return gaps

    def candidates(
        self, lo: float, hi: float, *, limit: int | None = None, min_depth: float = MIN_CANDIDATE_DEPTH
    ) -> list[Candidate]:
        """The dips of cohesion inside ``[lo, hi)`` at least ``min_depth`` deep, in time order (the
        ``limit`` deepest if given). A dip next to a line that opens with a discourse cue moves to
        that line (the vocabulary often changes a sentence after the announcement)."""
        gaps = self.gap_depths(lo, hi)
        found: dict[int, Candidate] = {}
        for g, (i, depth, cue) in enumerate(gaps):
            left = gaps[g - 1][1] if g > 0 else -1.0
            right = gaps[g + 1][1] if g + 1 < len(gaps) else -1.0
            if depth >= max(min_depth, 1e-9) and depth >= left and depth >= right:
                if not cue:
                    near = [h for h in (g - 1, g + 1) if 0 <= h < len(gaps) and gaps[h][2]]
                    if near:
                        i = gaps[near[0]][0]
                        depth = max(depth + CUE_BONUS, gaps[near[0]][1])
                        cue = True
                found[i] = Candidate(index=i, time=self.lines[i].start, depth=round(depth, 4), cue=cue)
        ordered = sorted(found.values(), key=lambda c: c.time)
        if limit is not None and len(ordered) > limit:
            keep = sorted(ordered, key=lambda c: -c.depth)[:limit]
            ordered = [c for c in ordered if c in keep]
        return ordered

    def cutoff(self, lo: float, hi: float, min_depth: float = MIN_DEPTH) -> float:
        """TextTiling's ``mean - std/2`` over the depth scores of every gap in ``[lo, hi)``, at least
        ``min_depth`` and at least ``RELATIVE_DEPTH`` of the deepest gap's score."""
        depths = [d for _, d, _ in self.gap_depths(lo, hi)]
        return max(cutoff(depths, min_depth), RELATIVE_DEPTH * max(depths, default=0.0))

    def segment(self, lo: float, hi: float, *, min_len: float, max_topics: int) -> list[float]:
        """The lexical topic starts of ``[lo, hi)``."""
        return choose(
            self.candidates(lo, hi), lo, hi, min_len=min_len, max_topics=max_topics, threshold=self.cutoff(lo, hi)
        )


def depth_scores(sims: Sequence[float]) -> list[float]:
    """TextTiling's depth: the climb from each gap to the highest point reached going uphill on each side."""
    depths = []
    for g, s in enumerate(sims):
        left = s
        for j in range(g - 1, -1, -1):
            if sims[j] < left:
                break
            left = sims[j]
        right = s
        for j in range(g + 1, len(sims)):
            if sims[j] < right:
                break
            right = sims[j]
        depths.append((left - s) + (right - s))
    return depths


def cutoff(depths: Sequence[float], min_depth: float = MIN_DEPTH) -> float:
    """``mean - std/2`` of the depth scores, never below ``min_depth``."""
    if len(depths) == 0:
        return min_depth
    values = np.asarray(depths, dtype=float)
    return max(min_depth, float(values.mean() - values.std() / 2))


def choose(
    candidates: Sequence[Candidate],
    lo: float,
    hi: float,
    *,
    min_len: float,
    max_topics: int,
    threshold: float | None = None,
    fixed: Sequence[float] = (),
) -> list[float]:
    """Topic starts in ``[lo, hi)`` (``lo`` first): the deepest candidates at or over ``threshold``
    (default: the cutoff of the candidates' own depths), spaced by ``min_len``, at most ``max_topics``.
    The times in ``fixed`` are kept first, whatever their depth."""
    if threshold is None:
        threshold = cutoff([c.depth for c in candidates])
    kept: list[float] = []
    pinned = set(fixed)
    ordered = sorted(candidates, key=lambda c: (c.time not in pinned, -c.depth, c.time))
    for c in ordered:
        if len(kept) >= max(0, max_topics - 1) or (c.time not in pinned and c.depth < threshold):
            break
        if c.time - lo < min_len or hi - c.time < min_len or any(abs(c.time - t) < min_len for t in kept):
            continue
        kept.append(c.time)
    return [lo, *sorted(kept)]


def segment(lines: Sequence[Line], lo: float, hi: float, *, min_len: float, max_topics: int) -> list[float]:
    """The lexical topic starts of ``[lo, hi)`` over ``lines``."""
    return Cohesion(lines).segment(lo, hi, min_len=min_len, max_topics=max_topics)
