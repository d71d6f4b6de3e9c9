"""Library-wide voices: the same person recognised across files.

Every diarization keeps one voice print per local speaker (``SpeakerVoice``: the diarizer's
own embedding and the talk time it rests on). ``cluster_voices`` groups the voice prints of
every file into identities ``VOICE_0001``, ``VOICE_0002``, ...:

1. Voice prints with at least ``min_talk_s`` seconds of speech are clustered agglomeratively
   (average linkage over cosine distances); two clusters join while their average distance is
   under ``threshold`` (default 0.2: on the generated library, one voice's prints from two
   files lie 0.03-0.04 apart and the nearest two different voices 0.22; the diarizer's own
   fallback clustering treats one voice as staying within 0.25). Two speakers of one file are never the same identity (the diarizer
   already told them apart): their distance counts as the maximum.
2. Shorter voice prints are too noisy to merge identities: each joins the nearest identity
   when within ``threshold`` of its centroid (without moving the centroid, so it can bridge
   nothing), or else becomes an identity of its own.
3. IDs are stable: the new clusters are matched one to one with the previous registry's
   identities (shared members first, then centroid distance under ``threshold``); a matched
   cluster keeps the old ID, a new one gets the next number, and numbers are never reused.

The registry (``VoiceRegistry``) is stored as JSON under the data directory (``DataLayout``);
names are not in it: they come from the user's ``speakers.yaml`` (``core.speakers``).
``b_cubed`` scores identities against known voices.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from autorag_dagster.core.types import Diarization

ID_PREFIX = "VOICE_"


class VoicesConfig(BaseModel):
    """How voices are grouped into library-wide identities (the AUTORAG_* settings of the same name)."""

    voice_threshold: float = Field(
        0.2,
        gt=0.0,
        lt=2.0,
        description="Cosine distance under which two voices (average linkage) are one identity.",
    )
    voice_min_talk_s: float = Field(
        4.0, ge=0.0, description="Seconds of speech a voice needs before it may merge identities."
    )


class VoiceMember(BaseModel):
    file: str
    speaker: str  # the file's local label
    talk_s: float


class Identity(BaseModel):
    id: str
    centroid: list[float] = Field(description="L2-normalised mean of its members' voices (talk-time weighted).")
    members: list[VoiceMember] = Field(default_factory=list)

    @property
    def talk_s(self) -> float:
        return round(sum(m.talk_s for m in self.members), 3)

    @property
    def files(self) -> list[str]:
        return sorted({m.file for m in self.members})


class VoiceRegistry(BaseModel):
    """Every identity of the library, with its members; what ``voices`` stores."""

    threshold: float = 0.2
    min_talk_s: float = 4.0
    next_number: int = 1
    identities: list[Identity] = Field(default_factory=list)

    def assignments(self) -> dict[tuple[str, str], str]:
        """(file, local label) -> identity ID."""
        return {(m.file, m.speaker): identity.id for identity in self.identities for m in identity.members}

    def identity_of(self, file: str, speaker: str) -> str | None:
        return self.assignments().get((file, speaker))

    def files_of(self) -> dict[str, dict[str, str]]:
        """file -> {local label -> identity ID}."""
        out: dict[str, dict[str, str]] = {}
        for (file, speaker), identity in self.assignments().items():
            out.setdefault(file, {})[speaker] = identity
        return out

    def get(self, identity: str) -> Identity | None:
        return next((i for i in self.identities if i.id == identity), None)


@dataclass(frozen=True)
class VoiceSample:
    file: str
    speaker: str
    talk_s: float
    embedding: np.ndarray


def collect_voices(diarizations: Iterable[Diarization]) -> list[VoiceSample]:
    """The voice prints of every diarization, in a stable order."""
    samples = [
        VoiceSample(d.key, v.speaker, v.talk_s, _unit(np.asarray(v.embedding, dtype=np.float64)))
        for d in diarizations
        for v in d.voices
        if v.embedding
    ]
    return sorted(samples, key=lambda s: (s.file, s.speaker))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _centroid(samples: list[VoiceSample]) -> np.ndarray:
    weights = np.array([max(s.talk_s, 1e-3) for s in samples])
    return _unit(np.average(np.stack([s.embedding for s in samples]), axis=0, weights=weights))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(_unit(a), _unit(b)))


def _agglomerate(samples: list[VoiceSample], threshold: float) -> list[list[VoiceSample]]:
    """Average-linkage clusters of ``samples`` under ``threshold``; one file's speakers never share one."""
    if len(samples) < 2:
        return [samples] if samples else []
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    vectors = np.stack([s.embedding for s in samples])
    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    for i, a in enumerate(samples):
        for j, b in enumerate(samples):
            if i != j and a.file == b.file:
                distances[i, j] = 2.0  # cannot-link: the diarizer told them apart
    np.fill_diagonal(distances, 0.0)
    labels = fcluster(linkage(squareform(distances, checks=False), method="average"), t=threshold, criterion="distance")
    clusters: dict[int, list[VoiceSample]] = {}
    for label, sample in zip(labels, samples):
        clusters.setdefault(int(label), []).append(sample)
    # Average linkage can still leave two speakers of one file together when each is close to the
    # rest: split such a cluster so that each file keeps one member per cluster (the longest).
    out = []
    for members in clusters.values():
        while members:
            keep: dict[str, VoiceSample] = {}
            for sample in sorted(members, key=lambda s: -s.talk_s):
                keep.setdefault(sample.file, sample)
            out.append(sorted(keep.values(), key=lambda s: (s.file, s.speaker)))
            members = [s for s in members if keep[s.file] is not s]
    return out


def _match_previous(
    clusters: list[list[VoiceSample]], centroids: list[np.ndarray], previous: VoiceRegistry | None, threshold: float
) -> dict[int, str]:
    """Cluster index -> previous identity ID, one to one."""
    if previous is None or not previous.identities or not clusters:
        return {}
    from scipy.optimize import linear_sum_assignment

    old = previous.assignments()
    big = 1e6
    cost = np.full((len(clusters), len(previous.identities)), big)
    for i, members in enumerate(clusters):
        for j, identity in enumerate(previous.identities):
            shared = sum(1 for s in members if old.get((s.file, s.speaker)) == identity.id)
            distance = _distance(centroids[i], np.asarray(identity.centroid))
            if shared:
                cost[i, j] = -shared + distance / 10  # shared members decide; distance breaks ties
            elif distance < threshold:
                cost[i, j] = distance
    rows, cols = linear_sum_assignment(cost)
    return {int(i): previous.identities[j].id for i, j in zip(rows, cols) if cost[i, j] < big}


def cluster_voices(
    samples: Iterable[VoiceSample],
    previous: VoiceRegistry | None = None,
    config: VoicesConfig | None = None,
) -> VoiceRegistry:
    """Identities over ``samples`` (see the module's docstring), keeping ``previous``'s IDs."""
    config = config or VoicesConfig()
    threshold, min_talk = config.voice_threshold, config.voice_min_talk_s
    samples = list(samples)
    strong = [s for s in samples if s.talk_s >= min_talk]
    weak = [s for s in samples if s.talk_s < min_talk]

    clusters = _agglomerate(strong, threshold)
    centroids = [_centroid(c) for c in clusters]
    settled = len(clusters)  # weak voices join only these, so two weak voices never merge
    for sample in weak:
        options = [
            (i, _distance(sample.embedding, centroids[i]))
            for i in range(settled)
            if all(m.file != sample.file for m in clusters[i])  # never two speakers of one file
        ]
        best = min(options, key=lambda o: o[1], default=None)
        if best is not None and best[1] < threshold:
            clusters[best[0]].append(sample)
        else:
            clusters.append([sample])
            centroids.append(sample.embedding)

    matched = _match_previous(clusters, centroids, previous, threshold)
    next_number = max(previous.next_number if previous else 1, 1)
    # New identities are numbered in order of their first file and label, so a re-run is repeatable.
    order = sorted(range(len(clusters)), key=lambda i: min((s.file, s.speaker) for s in clusters[i]))
    ids: dict[int, str] = {}
    for i in order:
        if i in matched:
            ids[i] = matched[i]
        else:
            ids[i] = f"{ID_PREFIX}{next_number:04d}"
            next_number += 1
    identities = [
        Identity(
            id=ids[i],
            centroid=[round(float(x), 6) for x in centroids[i]],
            members=[VoiceMember(file=s.file, speaker=s.speaker, talk_s=round(s.talk_s, 3)) for s in clusters[i]],
        )
        for i in range(len(clusters))
    ]
    identities.sort(key=lambda identity: identity.id)
    return VoiceRegistry(threshold=threshold, min_talk_s=min_talk, next_number=next_number, identities=identities)


def changed_files(before: VoiceRegistry | None, after: VoiceRegistry) -> list[str]:
    """Files whose speakers map to other identities than before (their labels change)."""
    old = before.files_of() if before else {}
    new = after.files_of()
    return sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))


def b_cubed(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 of a clustering (item -> cluster) against the truth
    (item -> class), over the items of ``truth``; an item missing from ``predicted`` is a cluster of its own."""
    items = list(truth)
    if not items:
        return 1.0, 1.0, 1.0
    cluster = {item: predicted.get(item, ("alone", item)) for item in items}
    precision = recall = 0.0
    for item in items:
        same_cluster = [o for o in items if cluster[o] == cluster[item]]
        same_class = [o for o in items if truth[o] == truth[item]]
        correct = sum(1 for o in same_cluster if truth[o] == truth[item])
        precision += correct / len(same_cluster)
        recall += correct / len(same_class)
    precision, recall = precision / len(items), recall / len(items)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1
