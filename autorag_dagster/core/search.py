"""Search the segment store: hybrid (vector + full text, reciprocal rank fusion), vector or text.

``search`` returns ``Hit``s: the file, the time span to jump to, the speakers, the topic the
text sits in, and the text. ``hits_json`` renders them for programs (the command line draws its own table).
The query embedding comes from an injected function (the Ollama client's ``embed`` in the CLI),
so this module depends on no model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from lancedb.rerankers import RRFReranker

from autorag_dagster.core.store import DISTANCE, EmbedFn, SegmentStore, StoreError, sql_string

Mode = Literal["hybrid", "vector", "text"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "text")
_COLUMNS = ["file_key", "kind", "level", "path", "title", "start", "end", "speakers", "text"]
_SCORES = {"vector": "_distance", "text": "_score"}


@dataclass(frozen=True)
class Hit:
    """One result. ``score`` is higher-is-better: the RRF score (hybrid), the cosine similarity
    (vector) or the BM25 score (text)."""

    file: str
    start: float
    end: float
    speakers: list[str]
    kind: str
    level: int
    path: str
    title: str
    text: str
    score: float


def where_clause(files: Sequence[str] | None = None, speakers: Sequence[str] | None = None) -> str | None:
    """A filter keeping rows of any of ``files`` and spoken by any of ``speakers``."""
    parts = []
    if files:
        parts.append(f"file_key IN ({', '.join(map(sql_string, files))})")
    if speakers:
        parts.append(f"array_has_any(speakers, make_array({', '.join(map(sql_string, speakers))}))")
    return " AND ".join(parts) or None


def search(
    store: SegmentStore,
    query: str,
    *,
    embed: EmbedFn | None = None,
    k: int = 5,
    files: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    mode: Mode = "hybrid",
) -> list[Hit]:
    """The ``k`` best hits for ``query`` among the store's rows, optionally filtered."""
    query = query.strip()
    if not query:
        raise ValueError("the query is empty")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    table = store.table()
    if mode != "vector" and not any("text" in i.columns and i.index_type == "FTS" for i in table.list_indices()):
        raise StoreError(
            f"table {store.name!r} has no full-text index yet: run the LanceDB index maintenance "
            "(the maintenance asset, or SegmentStore.maintain) first, or search with mode='vector'"
        )
    vector = _query_vector(store, query, embed) if mode != "text" else None
    where = where_clause(files, speakers)
    if mode == "hybrid":
        # Each leg fetches a wider pool than k so that fusion has something to fuse.
        builder = (
            table.search(query_type="hybrid")
            .vector(vector)
            .text(query)
            .distance_type(DISTANCE)
            .rerank(RRFReranker())
            .limit(max(4 * k, 20))
        )
    elif mode == "vector":
        builder = table.search(vector).distance_type(DISTANCE).limit(k)
    else:
        builder = table.search(query, query_type="fts").limit(k)
    if where:
        builder = builder.where(where, prefilter=True)
    if mode != "hybrid":  # the hybrid legs add their own score columns to what they return
        builder = builder.select(_COLUMNS + [_SCORES[mode]])
    rows = builder.to_list()[:k]
    return [_hit(row, mode) for row in rows]


def _query_vector(store: SegmentStore, query: str, embed: EmbedFn | None) -> list[float]:
    if embed is None:
        raise ValueError("vector and hybrid search need an embed function for the query")
    (vector,) = embed([query])
    if len(vector) != store.dim:
        raise StoreError(
            f"the query embedding has {len(vector)} dimensions, but table {store.name!r} holds "
            f"{store.dim}-d vectors: {store.embedding_model!r} changed; re-materialise the embeddings"
        )
    return list(vector)


def _hit(row: dict, mode: Mode) -> Hit:
    if mode == "hybrid":
        score = row["_relevance_score"]
    elif mode == "vector":
        score = 1.0 - row["_distance"]
    else:
        score = row["_score"]
    return Hit(
        file=row["file_key"],
        start=row["start"],
        end=row["end"],
        speakers=list(row["speakers"] or []),
        kind=row["kind"],
        level=row["level"],
        path=row["path"] or "",
        title=row["title"] or "",
        text=row["text"],
        score=float(score),
    )


def hits_json(hits: Sequence[Hit]) -> str:
    """JSON for programs: a list of hit objects (times in seconds)."""
    return json.dumps([asdict(hit) for hit in hits], ensure_ascii=False, indent=2)
