"""The segment store: one LanceDB table of embedded transcript chunks and topic nodes.

The database lives at a URI: a local folder (the default, ``<data_dir>/lancedb``) or object
storage (``s3://bucket/prefix``, ``gs://...``, ``az://...``), opened with ``lancedb.connect``.

Schema (``segment_schema``), one row per record of ``autorag_dagster.core.chunking``:

- ``row_id`` string, not null: sha256 of (file_key, kind, ordinal), stable across reruns
- ``file_key`` string, not null: the partition, the audio path relative to the audio root
- ``kind`` string, not null: ``chunk`` (transcript text) or ``topic`` (a topic node)
- ``level`` int32: the topic's level (1, 2, ...); 0 for chunks
- ``path`` string: the topic node id (``2.1``); for a chunk, the deepest node covering it
- ``start``, ``end`` float64: the span in seconds
- ``speakers`` list<string>: the speakers heard in the span
- ``text`` string: what is embedded and full-text indexed
- ``title``, ``summary`` string: the topic's (a chunk carries its topic's title)
- ``vector`` fixed_size_list<float32>[dim]: the embedding
- ``embedding_model`` string, not null: the model that made ``vector``
- ``source_hash`` string: the source audio's hash, to tell stale rows

Models and dimensions: a table holds one embedding model. Its name is
``segments__<model-slug>__<dim>`` and its schema metadata records the exact model and dim, so
switching models writes to a new table and searches read only the current model's table:
vectors of two models are never mixed. Tables of other models stay until dropped
(``SegmentStore.other_tables`` lists them; ``maintain`` reports them).

Writes: ``write_partition`` replaces one file's rows with a single ``merge_insert`` (update
matched row ids, insert new ones, delete that file's rows that are gone), which commits as one
table version: a rerun leaves no duplicates, and a failure before the commit (an embedding
error, a crash) leaves the previous rows as they were.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS, BTree, HnswSq

from autorag_dagster.core.chunking import Record
from autorag_dagster.core.types import EmbeddingsWrite

TABLE_PREFIX = "segments"
DISTANCE = "cosine"
DEFAULT_VECTOR_INDEX_MIN_ROWS = 10_000
_WRITE_BATCH_ROWS = 256
_HNSW_ROWS_PER_PARTITION = 500_000

EmbedFn = Callable[[list[str]], list[list[float]]]


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says what to do instead."""


def normalise_model(name: str) -> str:
    """Ollama's canonical form of a model name: ``nomic-embed-text`` is ``nomic-embed-text:latest``."""
    name = name.strip()
    if not name:
        raise ValueError("the embedding model name is empty")
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def model_slug(model: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", normalise_model(model).lower()).strip("-")


def table_name(model: str, dim: int) -> str:
    return f"{TABLE_PREFIX}__{model_slug(model)}__{dim}"


def segment_schema(model: str, dim: int) -> pa.Schema:
    """The table's arrow schema; the metadata pins the model and dimension."""
    return pa.schema(
        [
            pa.field("row_id", pa.string(), nullable=False),
            pa.field("file_key", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("level", pa.int32()),
            pa.field("path", pa.string()),
            pa.field("start", pa.float64()),
            pa.field("end", pa.float64()),
            pa.field("speakers", pa.list_(pa.string())),
            pa.field("text", pa.string()),
            pa.field("title", pa.string()),
            pa.field("summary", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("embedding_model", pa.string(), nullable=False),
            pa.field("source_hash", pa.string()),
        ],
        metadata={"autorag.embedding_model": normalise_model(model), "autorag.dim": str(dim)},
    )


def sql_string(value: str) -> str:
    """A SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


def row_id(file_key: str, kind: str, ordinal: int) -> str:
    return hashlib.sha256(f"{file_key}\x00{kind}\x00{ordinal}".encode()).hexdigest()[:32]


def embed_records(
    records: Sequence[Record], embed: EmbedFn, *, batch_size: int = 32
) -> Iterator[tuple[Record, list[float]]]:
    """Embed the records' text in batches, lazily: pairs of (record, vector)."""
    for batch in _batched(records, batch_size):
        vectors = embed([r.text for r in batch])
        if len(vectors) != len(batch):
            raise StoreError(f"the embedder returned {len(vectors)} vectors for {len(batch)} texts")
        yield from zip(batch, vectors)


@dataclass(frozen=True)
class PartitionSummary:
    """What the asset checks look at for one file."""

    file_key: str
    rows: int
    unique_row_ids: int
    chunks: int
    topics: int
    dim: int
    nan_vectors: int
    models: tuple[str, ...]


@dataclass
class MaintenanceReport:
    table: str
    rows: int
    actions: list[str] = field(default_factory=list)
    indices: list[str] = field(default_factory=list)
    other_tables: list[str] = field(default_factory=list)


class SegmentStore:
    """The segment table of one embedding model (and its dimension) in a LanceDB database."""

    def __init__(self, uri: str, embedding_model: str, dim: int, *, storage_options: dict | None = None):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.uri = str(uri)
        self.embedding_model = normalise_model(embedding_model)
        self.dim = dim
        self.name = table_name(embedding_model, dim)
        self.db = lancedb.connect(self.uri, storage_options=storage_options)

    @classmethod
    def for_model(cls, uri: str, embedding_model: str, **kwargs) -> SegmentStore:
        """Open the existing table of a model without knowing its dimension."""
        prefix = f"{TABLE_PREFIX}__{model_slug(embedding_model)}__"
        db = lancedb.connect(str(uri), storage_options=kwargs.get("storage_options"))
        dims = sorted(int(n.removeprefix(prefix)) for n in _table_names(db) if n.startswith(prefix))
        if len(dims) != 1:
            problem = "no table" if not dims else f"tables for several dimensions {dims}"
            models = sorted(
                {
                    (db.open_table(n).schema.metadata or {}).get(b"autorag.embedding_model", b"?").decode()
                    for n in _table_names(db)
                    if n.startswith(f"{TABLE_PREFIX}__")
                }
            )
            hint = (
                f"; the database holds vectors of {', '.join(models)}: set AUTORAG_EMBED_MODEL to one of them"
                if models
                else ""
            )
            raise StoreError(
                f"{problem} for embedding model {normalise_model(embedding_model)!r} in {uri}{hint}, "
                "or materialise the embeddings with that model first"
            )
        return cls(uri, embedding_model, dims[0], **kwargs)

    # --- tables ----------------------------------------------------------------------
    def exists(self) -> bool:
        return self.name in _table_names(self.db)

    def table(self) -> lancedb.table.Table:
        """The open table; raises StoreError when nothing was written for this model yet."""
        if not self.exists():
            raise StoreError(
                f"no table {self.name!r} in {self.uri}: nothing was embedded with "
                f"{self.embedding_model!r} ({self.dim}-d) yet; materialise the embeddings first"
            )
        return self._checked(self.db.open_table(self.name))

    def _checked(self, table: lancedb.table.Table) -> lancedb.table.Table:
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        found = (meta.get("autorag.embedding_model"), meta.get("autorag.dim"))
        if found != (self.embedding_model, str(self.dim)):
            raise StoreError(
                f"table {self.name!r} in {self.uri} holds {found[0]!r} ({found[1]}-d) vectors, "
                f"not {self.embedding_model!r} ({self.dim}-d); drop it or use another URI"
            )
        return table

    def _open_or_create(self) -> lancedb.table.Table:
        if self.exists():
            return self.table()
        schema = segment_schema(self.embedding_model, self.dim)
        return self._checked(self.db.create_table(self.name, schema=schema, exist_ok=True))

    def other_tables(self) -> list[str]:
        """Segment tables of other models or dimensions in the same database."""
        return [n for n in _table_names(self.db) if n.startswith(f"{TABLE_PREFIX}__") and n != self.name]

    def count(self, file_key: str | None = None) -> int:
        if not self.exists():
            return 0
        return self.table().count_rows(None if file_key is None else f"file_key = {sql_string(file_key)}")

    # --- writes ------------------------------------------------------------------------
    def write_partition(
        self, file_key: str, rows: Iterable[tuple[Record, Sequence[float]]], *, source_hash: str = ""
    ) -> EmbeddingsWrite:
        """Replace every row of ``file_key`` with ``rows`` in one commit.

        ``rows`` may be lazy (``embed_records``): they are streamed into the merge, and an error
        raised while producing them aborts the write before anything is committed, re-raised as is.
        """
        if not file_key:
            raise ValueError("file_key is empty")
        schema = segment_schema(self.embedding_model, self.dim)
        table = self._open_or_create()
        source_error: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            ordinals = {"chunk": 0, "topic": 0}
            try:
                for batch in _batched(rows, _WRITE_BATCH_ROWS):
                    out = []
                    for record, vector in batch:
                        out.append(self._row(file_key, record, vector, ordinals[record.kind], source_hash))
                        ordinals[record.kind] += 1
                    yield pa.RecordBatch.from_pylist(out, schema=schema)
            except BaseException as exc:
                source_error.append(exc)
                raise

        try:
            result = (
                table.merge_insert("row_id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"file_key = {sql_string(file_key)}")
                .execute(pa.RecordBatchReader.from_batches(schema, batches()))
            )
        except Exception:
            if source_error:
                raise source_error[0] from None
            raise
        return EmbeddingsWrite(
            table=self.name,
            embedding_model=self.embedding_model,
            dim=self.dim,
            file_key=file_key,
            rows=table.count_rows(f"file_key = {sql_string(file_key)}"),
            inserted=result.num_inserted_rows,
            updated=result.num_updated_rows,
            deleted=result.num_deleted_rows,
            version=result.version,
        )

    def _row(self, file_key: str, record: Record, vector: Sequence[float], ordinal: int, source_hash: str) -> dict:
        if len(vector) != self.dim:
            raise StoreError(
                f"{self.embedding_model!r} returned a {len(vector)}-d vector, but this table holds "
                f"{self.dim}-d vectors: open the store with dim={len(vector)}"
            )
        if not all(math.isfinite(x) for x in vector):
            raise StoreError(
                f"{self.embedding_model!r} returned a vector with NaN or infinity for {record.text[:60]!r}"
            )
        return {
            "row_id": row_id(file_key, record.kind, ordinal),
            "file_key": file_key,
            "kind": record.kind,
            "level": record.level,
            "path": record.path,
            "start": record.start,
            "end": record.end,
            "speakers": list(record.speakers),
            "text": record.text,
            "title": record.title,
            "summary": record.summary,
            "vector": list(vector),
            "embedding_model": self.embedding_model,
            "source_hash": source_hash,
        }

    def partition_summary(self, file_key: str) -> PartitionSummary:
        rows = (
            self.table()
            .search()
            .where(f"file_key = {sql_string(file_key)}")
            .select(["row_id", "kind", "vector", "embedding_model"])
            .limit(None)
            .to_arrow()
        )
        vectors = rows["vector"].combine_chunks()
        values = vectors.flatten().to_numpy(zero_copy_only=False).reshape(len(rows), self.dim)
        kinds = rows["kind"].to_pylist()
        return PartitionSummary(
            file_key=file_key,
            rows=len(rows),
            unique_row_ids=len(set(rows["row_id"].to_pylist())),
            chunks=kinds.count("chunk"),
            topics=kinds.count("topic"),
            dim=vectors.type.list_size,
            nan_vectors=int((~np.isfinite(values).all(axis=1)).sum()),
            models=tuple(sorted(set(rows["embedding_model"].to_pylist()))),
        )

    # --- maintenance ---------------------------------------------------------------------
    def maintain(self, *, vector_index_min_rows: int = DEFAULT_VECTOR_INDEX_MIN_ROWS) -> MaintenanceReport:
        """Indexes and compaction for the whole table, run after partitions land.

        * a native full-text index on ``text`` (built once; later rows are folded in by optimize),
        * scalar indexes on ``file_key`` and ``row_id`` (partition filters and merges),
        * an IVF_HNSW_SQ cosine vector index once the table has ``vector_index_min_rows`` rows
          (below that a flat scan is exact and fast), one IVF partition per 500k rows,
        * ``optimize``: compaction of small fragments, index updates, pruning of old versions.
        """
        table = self.table()
        rows = table.count_rows()
        report = MaintenanceReport(table=self.name, rows=rows, other_tables=self.other_tables())
        indexed = {column for index in table.list_indices() for column in index.columns}
        if "text" not in indexed:
            table.create_index("text", config=FTS(), replace=False)
            report.actions.append("created the full-text index on text")
        for column in ("file_key", "row_id"):
            if column not in indexed:
                table.create_index(column, config=BTree(), replace=False)
                report.actions.append(f"created a scalar index on {column}")
        if "vector" not in indexed and rows >= vector_index_min_rows:
            partitions = max(1, math.ceil(rows / _HNSW_ROWS_PER_PARTITION))
            table.create_index(
                "vector", config=HnswSq(distance_type=DISTANCE, num_partitions=partitions), replace=False
            )
            report.actions.append(f"created an IVF_HNSW_SQ vector index ({partitions} partition(s), {rows} rows)")
        elif "vector" not in indexed:
            report.actions.append(f"no vector index yet: {rows} rows < {vector_index_min_rows}")
        before = table.stats()["fragment_stats"]["num_fragments"]
        table.optimize()
        after = table.stats()["fragment_stats"]["num_fragments"]
        report.actions.append(f"optimized: {before} -> {after} fragment(s)")
        report.indices = sorted(f"{i.index_type}({', '.join(i.columns)})" for i in table.list_indices())
        return report


def embed_and_write(
    uri: str,
    embedding_model: str,
    file_key: str,
    records: Sequence[Record],
    embed: EmbedFn,
    *,
    source_hash: str = "",
    batch_size: int = 32,
    storage_options: dict | None = None,
) -> EmbeddingsWrite:
    """Embed one file's records and replace its partition in the model's table.

    The dimension is read from the first vector (from a one-word probe when there are no
    records, so that an empty file still clears its old rows from the right table).
    """
    pairs = embed_records(records, embed, batch_size=batch_size)
    first = next(pairs, None)
    dim = len(first[1]) if first else len(embed(["probe"])[0])
    store = SegmentStore(uri, embedding_model, dim, storage_options=storage_options)
    return store.write_partition(file_key, chain([first] if first else [], pairs), source_hash=source_hash)


def _segment_tables(db) -> list:
    return [db.open_table(n) for n in _table_names(db) if n.startswith(f"{TABLE_PREFIX}__")]


def delete_file_rows(uri: str, file_key: str, *, storage_options: dict | None = None) -> int:
    """Delete every row of ``file_key`` from the segment table of every model; returns how many."""
    where = f"file_key = {sql_string(file_key)}"
    deleted = 0
    for table in _segment_tables(lancedb.connect(str(uri), storage_options=storage_options)):
        found = table.count_rows(where)
        if found:
            table.delete(where)
            deleted += found
    return deleted


def move_file_rows(uri: str, old_key: str, new_key: str, *, storage_options: dict | None = None) -> int:
    """Give every row of ``old_key`` (in the table of every model) to ``new_key``: the same text,
    vectors and source hash, with the new key and the row ids it would have been written with.
    Returns how many rows moved."""
    moved = 0
    for table in _segment_tables(lancedb.connect(str(uri), storage_options=storage_options)):
        rows = table.search().where(f"file_key = {sql_string(old_key)}").limit(None).to_arrow()
        if not len(rows):
            continue
        rows = rows.select(table.schema.names)
        kinds = rows["kind"].to_pylist()
        ordinals = {row_id(old_key, kind, i): (kind, i) for kind in set(kinds) for i in range(kinds.count(kind))}
        ids = [
            row_id(new_key, *ordinals[old])
            if old in ordinals
            else hashlib.sha256(f"{new_key}\x00{old}".encode()).hexdigest()[:32]
            for old in rows["row_id"].to_pylist()
        ]
        rows = rows.set_column(
            rows.schema.get_field_index("row_id"), rows.schema.field("row_id"), pa.array(ids, pa.string())
        )
        rows = rows.set_column(
            rows.schema.get_field_index("file_key"),
            rows.schema.field("file_key"),
            pa.array([new_key] * len(rows), pa.string()),
        )
        table.delete(f"file_key = {sql_string(new_key)}")
        table.add(rows)
        table.delete(f"file_key = {sql_string(old_key)}")
        moved += len(rows)
    return moved


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _table_names(db) -> list[str]:
    names, token = [], None
    while True:
        page = db.list_tables(page_token=token)
        names.extend(page.tables)
        token = page.page_token
        if not token:
            return names
