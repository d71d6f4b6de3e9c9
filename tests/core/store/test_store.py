from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from autorag_dagster.core.chunking import Record, build_records
from autorag_dagster.core.search import search
from autorag_dagster.core.store import (
    SegmentStore,
    StoreError,
    embed_and_write,
    embed_records,
    normalise_model,
    segment_schema,
    table_name,
)


def hashing_embed(dim: int):
    """A deterministic stand-in for a second embedding model of another dimension."""

    def embed(texts: list[str]) -> list[list[float]]:
        return [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:dim]] for t in texts]

    return embed


def rows_of(store: SegmentStore, file_key: str | None = None) -> list[dict]:
    rows = store.table().to_arrow().to_pylist()
    return sorted((r for r in rows if file_key in (None, r["file_key"])), key=lambda r: r["row_id"])


@pytest.fixture()
def store(tmp_path, minilm) -> SegmentStore:
    return SegmentStore(str(tmp_path / "lancedb"), minilm.model_name, minilm.dim)


def write_file(store, corpus, embed, key, **kwargs):
    transcript, tree = corpus[key]
    records = build_records(transcript, tree)
    return records, store.write_partition(key, embed_records(records, embed), source_hash="sha-" + key, **kwargs)


def test_schema_pins_model_and_dimension():
    schema = segment_schema("nomic-embed-text", 768)
    assert schema.field("vector").type == pa.list_(pa.float32(), 768)
    assert schema.field("speakers").type == pa.list_(pa.string())
    assert schema.metadata[b"autorag.embedding_model"] == b"nomic-embed-text:latest"
    assert (
        table_name("nomic-embed-text", 768)
        == table_name("nomic-embed-text:latest", 768)
        == "segments__nomic-embed-text-latest__768"
    )
    assert normalise_model("hf.co/org/model:Q4_K_M") == "hf.co/org/model:Q4_K_M"


def test_rerun_replaces_the_partition_without_duplicates(store, corpus, minilm):
    key = "kitchen/dinner-party.wav"
    records, first = write_file(store, corpus, minilm, key)
    _, other = write_file(store, corpus, minilm, "workshop/bike-repair.m4a")
    before = rows_of(store, key)
    _, again = write_file(store, corpus, minilm, key)

    assert first.rows == again.rows == len(records) == store.count(key)
    assert (again.inserted, again.updated, again.deleted) == (0, len(records), 0)
    assert again.version == other.version + 1  # one commit per write
    after = rows_of(store, key)
    assert len({r["row_id"] for r in after}) == len(after)
    assert [r["row_id"] for r in after] == [r["row_id"] for r in before]
    assert {r["source_hash"] for r in after} == {"sha-" + key}
    summary = store.partition_summary(key)
    assert (summary.rows, summary.unique_row_ids, summary.dim, summary.nan_vectors) == (
        len(records),
        len(records),
        384,
        0,
    )
    assert (summary.chunks, summary.topics, summary.models) == (len(records) - 3, 3, ("all-minilm:latest",))


def test_a_shorter_rewrite_deletes_the_rows_that_are_gone_and_only_those(store, corpus, minilm):
    key = "kitchen/dinner-party.wav"
    records, _ = write_file(store, corpus, minilm, key)
    write_file(store, corpus, minilm, "workshop/bike-repair.m4a")
    bikes = rows_of(store, "workshop/bike-repair.m4a")

    report = store.write_partition(key, embed_records(records[:2], minilm))
    assert (report.rows, report.deleted) == (2, len(records) - 2)
    assert rows_of(store, "workshop/bike-repair.m4a") == bikes

    empty = store.write_partition(key, [])
    assert (empty.rows, store.count(key)) == (0, 0)
    assert store.count() == len(bikes)


def test_embed_and_write_learns_the_dimension_from_the_model(tmp_path, corpus, minilm):
    uri = str(tmp_path / "db")
    transcript, tree = corpus["workshop/bike-repair.m4a"]
    records = build_records(transcript, tree)
    report = embed_and_write(uri, "all-minilm", "bike.m4a", records, minilm, source_hash="abc", batch_size=4)
    assert (report.table, report.dim, report.rows, report.inserted) == (
        table_name("all-minilm", 384),
        384,
        len(records),
        len(records),
    )
    assert SegmentStore.for_model(uri, "all-minilm").partition_summary("bike.m4a").rows == len(records)

    cleared = embed_and_write(uri, "all-minilm", "bike.m4a", [], minilm)
    assert (cleared.rows, cleared.deleted) == (0, len(records))


def test_a_failure_mid_write_leaves_the_previous_rows(store, corpus, minilm):
    key = "meetings/q3-review.wav"
    records, _ = write_file(store, corpus, minilm, key)
    before, version = rows_of(store, key), store.table().version

    class EmbedderDied(RuntimeError):
        pass

    vector = minilm(["replacement"])[0]

    def failing_rows():
        for i in range(600):  # more than two write batches before the failure
            yield Record(kind="chunk", start=i, end=i + 1, speakers=("X",), text=f"new text {i}"), vector
        raise EmbedderDied("the embedding server went away")

    with pytest.raises(EmbedderDied, match="went away"):
        store.write_partition(key, failing_rows())

    assert store.table().version == version
    assert rows_of(store, key) == before
    assert store.count() == len(records)


def test_bad_vectors_are_refused_and_leave_the_previous_rows(store, corpus, minilm):
    key = "meetings/q3-review.wav"
    write_file(store, corpus, minilm, key)
    before = rows_of(store, key)
    record = Record(kind="chunk", start=0, end=1, speakers=("A",), text="x")
    with pytest.raises(StoreError, match="16-d vector.*384-d"):
        store.write_partition(key, [(record, [0.1] * 16)])
    with pytest.raises(StoreError, match="NaN"):
        store.write_partition(key, [(record, [float("nan")] * 384)])
    assert rows_of(store, key) == before


def test_a_model_switch_writes_a_separate_table_and_search_reads_only_it(store, corpus, minilm):
    for key in corpus:
        write_file(store, corpus, minilm, key)
    switched = SegmentStore(store.uri, "other-embed", 16)
    write_file(switched, corpus, hashing_embed(16), "workshop/bike-repair.m4a")
    same_name_new_dim = SegmentStore(store.uri, minilm.model_name, 16)

    assert switched.name != store.name != same_name_new_dim.name
    assert store.other_tables() == [switched.name]
    assert {r["file_key"] for r in rows_of(switched)} == {"workshop/bike-repair.m4a"}
    assert {r["embedding_model"] for r in rows_of(switched)} == {"other-embed:latest"}
    assert {r["file_key"] for r in rows_of(store)} == set(corpus)  # the old model's rows stay apart

    hits = search(switched, "spaghetti", embed=hashing_embed(16), k=50, mode="vector")
    assert hits and {h.file for h in hits} == {"workshop/bike-repair.m4a"}
    with pytest.raises(StoreError, match="query embedding has 384 dimensions"):
        search(switched, "spaghetti", embed=minilm, mode="vector")
    with pytest.raises(StoreError, match="nothing was embedded"):
        same_name_new_dim.table()

    reopened = SegmentStore.for_model(store.uri, "other-embed:latest")
    assert (reopened.name, reopened.dim) == (switched.name, 16)
    with pytest.raises(StoreError, match="no table for embedding model 'unknown:latest'"):
        SegmentStore.for_model(store.uri, "unknown")


def test_a_table_of_a_colliding_model_name_is_never_reused(tmp_path):
    uri = str(tmp_path / "db")
    SegmentStore(uri, "a-b", 4).write_partition("f.wav", [(Record("chunk", 0, 1, ("S",), "hi"), [1, 0, 0, 0])])
    colliding = SegmentStore(uri, "a_b", 4)
    assert colliding.name == SegmentStore(uri, "a-b", 4).name
    with pytest.raises(StoreError, match="holds 'a-b:latest'"):
        colliding.write_partition("f.wav", [(Record("chunk", 0, 1, ("S",), "hi"), [1, 0, 0, 0])])


def test_keys_with_quotes_are_escaped(store, minilm):
    key = "it's/o'clock'; DROP.wav"
    record = Record(kind="chunk", start=0, end=2, speakers=("SPEAKER_00",), text="quoted key text")
    store.write_partition("plain.wav", embed_records([record], minilm))
    store.write_partition(key, embed_records([record, record], minilm))
    assert store.count(key) == 2
    store.write_partition(key, embed_records([record], minilm))
    assert (store.count(key), store.count("plain.wav")) == (1, 1)
    assert [h.file for h in search(store, "quoted", embed=minilm, files=[key], mode="vector")] == [key]


def test_maintenance_builds_indexes_and_compacts(store, corpus, minilm):
    for key in corpus:
        write_file(store, corpus, minilm, key)
    fragments = store.table().stats()["fragment_stats"]["num_fragments"]
    assert fragments == len(corpus)

    small = store.maintain(vector_index_min_rows=10_000)
    assert "created the full-text index on text" in small.actions
    assert any(a.startswith("no vector index yet") for a in small.actions)
    assert "FTS(text)" in small.indices and not any("vector" in i for i in small.indices)
    assert small.actions[-1] == f"optimized: {fragments} -> 1 fragment(s)"

    write_file(store, corpus, minilm, "kitchen/dinner-party.wav")
    big = store.maintain(vector_index_min_rows=small.rows)
    assert "created the full-text index on text" not in big.actions
    assert any(a.startswith("created an IVF_HNSW_SQ vector index") for a in big.actions)
    assert any(i.endswith("(vector)") for i in big.indices)
    assert {i.columns[0] for i in store.table().list_indices()} == {"text", "file_key", "row_id", "vector"}

    hits = search(store, "patching a bicycle inner tube", embed=minilm, k=3, mode="vector")
    assert hits[0].file == "workshop/bike-repair.m4a"
    assert search(store, "spaghetti", mode="text", k=1)[0].file == "kitchen/dinner-party.wav"

    again = store.maintain(vector_index_min_rows=small.rows)
    assert not any(a.startswith("created") for a in again.actions)


def test_a_moved_file_keeps_its_vectors_under_the_ids_a_write_would_give_it(tmp_path, corpus):
    from autorag_dagster.core.store import delete_file_rows, move_file_rows

    key, other = sorted(corpus)[:2]
    new = f"moved/{key}"
    store = SegmentStore(str(tmp_path / "lancedb"), "hashing", 8)
    second = SegmentStore(str(tmp_path / "lancedb"), "hashing", 4)  # another model's table
    for target, dim in ((store, 8), (second, 4)):
        write_file(target, corpus, hashing_embed(dim), key)
        write_file(target, corpus, hashing_embed(dim), other)
    before, in_second = rows_of(store, key), second.count(key)

    assert move_file_rows(store.uri, key, new) == len(before) + in_second
    assert store.count(key) == 0 and second.count(key) == 0 and second.count(new) == in_second

    def content(rows: list[dict]) -> list[tuple]:
        return sorted((r["kind"], r["start"], r["text"], r["vector"], r["source_hash"]) for r in rows)

    assert content(rows_of(store, new)) == content(before)
    # Writing the moved file again updates its rows in place: the ids are those a write gives the new key.
    _, write = write_file(store, {new: corpus[key]}, hashing_embed(8), new)
    assert write.inserted == 0 and write.deleted == 0 and store.count(new) == len(before)

    expected = store.count(other) + second.count(other)
    assert delete_file_rows(store.uri, other) == expected
    assert store.count(other) == 0 and second.count(other) == 0 and store.count(new) == len(before)
