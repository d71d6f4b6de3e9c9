"""Search the segment store: hybrid (vector + full text, score fusion), vector or text.

Hybrid search fuses the two legs by score, not by rank. Every candidate (the union of both
legs' pools) gets its exact cosine similarity to the query and a text score: its BM25 score
divided by the pool's best, times the share of the query's words (outside a stop list) that
occur in it (0 when the text leg did not return it). Candidates rank by
``(1 - TEXT_WEIGHT) * similarity + TEXT_WEIGHT * text``. Rank fusion (RRF) gave a text match on
one common word ("day", "evening") as much say as a strong vector match, and ranked
paraphrased questions well below vector search alone. On the benchmark (``scripts/ask_bench.py``,
figures in docs/benchmarks.md) text weights from 0.05 to 0.2 rank exactly as well as vector
search, and 0.3 ranks worse. 0.15 sits inside that range and still lifts a row that shares the
query's rare words.

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

import numpy as np

from autorag_dagster.core.store import DISTANCE, EmbedFn, SegmentStore, StoreError, sql_string

Mode = Literal["hybrid", "vector", "text"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "text")
_COLUMNS = ["file_key", "kind", "level", "path", "title", "start", "end", "speakers", "text"]
_SCORES = {"vector": "_distance", "text": "_score"}
TEXT_WEIGHT = 0.15
"""The full-text leg's share of a hybrid score (chosen on the benchmark, see above)."""


@dataclass(frozen=True)
class Hit:
    """One result. ``score`` is higher-is-better: the fused score (hybrid), the cosine similarity
    (vector) or the BM25 score (text). ``similarity`` is the cosine similarity to the query
    (hybrid and vector; None in text mode): comparable across queries, unlike the other scores."""

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
    similarity: float | None = None


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
    text_weight: float = TEXT_WEIGHT,
    query_vector: Sequence[float] | None = None,
) -> list[Hit]:
    """The ``k`` best hits for ``query`` among the store's rows, optionally filtered.

    ``query_vector``: the query's embedding when the caller has it already (``embed`` is then
    not called)."""
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
    vector = None
    if mode != "text":
        vector = list(query_vector) if query_vector is not None else _query_vector(store, query, embed)
    where = where_clause(files, speakers)
    if mode == "hybrid":
        return _hybrid(table, query, vector, where, k, text_weight)
    if mode == "vector":
        builder = table.search(vector).distance_type(DISTANCE).limit(k)
    else:
        builder = table.search(query, query_type="fts").limit(k)
    if where:
        builder = builder.where(where, prefilter=True)
    rows = builder.select(_COLUMNS + [_SCORES[mode]]).to_list()[:k]
    return [_hit(row, mode) for row in rows]


def _hybrid(table, query: str, vector: list[float], where: str | None, k: int, text_weight: float) -> list[Hit]:
    """Both legs with a wider pool than ``k``, fused by score (see the module docstring)."""
    pool = max(4 * k, 20)
    legs = {
        "vector": table.search(vector).distance_type(DISTANCE).limit(pool),
        "text": table.search(query, query_type="fts").limit(pool),
    }
    rows: dict[str, dict] = {}
    text: dict[str, float] = {}
    for name, builder in legs.items():
        if where:
            builder = builder.where(where, prefilter=True)
        for row in builder.select(["row_id", "vector", *_COLUMNS, _SCORES[name]]).to_list():
            rows.setdefault(row["row_id"], row)
            if name == "text":
                text[row["row_id"]] = float(row["_score"])
    if not rows:
        return []
    ids = list(rows)
    matrix = np.asarray([rows[i]["vector"] for i in ids], dtype=np.float64)
    q = np.asarray(vector, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
    similarity = matrix @ q / np.where(norms > 0, norms, 1.0)
    best_text = max(text.values(), default=0.0) or 1.0
    terms = query_terms(query)
    scored = []
    for row_id, sim in zip(ids, similarity.tolist()):
        lexical = text.get(row_id, 0.0) / best_text * coverage(terms, rows[row_id]["text"]) if row_id in text else 0.0
        fused = (1 - text_weight) * sim + text_weight * lexical
        scored.append((fused, sim, row_id))
    scored.sort(key=lambda item: (-item[0], item[2]))
    return [_row_hit(rows[row_id], fused, sim) for fused, sim, row_id in scored[:k]]


_STOP_WORDS = frozenset(
    "a an and are as at be but by can do does did for from had has have he her his how i if in is it its "
    "me my no not of off on or our out she so than that the their them then there these they this to up "
    "us was we were what when where which while who why will with would you your".split()
)


def query_terms(query: str) -> set[str]:
    """The query's words outside a stop list, lower-cased."""
    words = "".join(c.lower() if c.isalnum() else " " for c in query).split()
    return {w for w in words if w not in _STOP_WORDS}


def coverage(terms: set[str], text: str) -> float:
    """The share of ``terms`` that occur in ``text`` (a word, or the start of one: plural, -ing)."""
    if not terms:
        return 0.0
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    found = sum(1 for term in terms if any(w.startswith(term[: max(4, len(term) - 1)]) for w in words))
    return found / len(terms)


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
    if mode == "vector":
        similarity = 1.0 - row["_distance"]
        return _row_hit(row, similarity, similarity)
    return _row_hit(row, row["_score"], None)


def _row_hit(row: dict, score: float, similarity: float | None) -> Hit:
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
        similarity=None if similarity is None else float(similarity),
    )


def hits_json(hits: Sequence[Hit]) -> str:
    """JSON for programs: a list of hit objects (times in seconds)."""
    return json.dumps([asdict(hit) for hit in hits], ensure_ascii=False, indent=2)
