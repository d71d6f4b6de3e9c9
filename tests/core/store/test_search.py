from __future__ import annotations

import json

import pytest
from rich.console import Console

from autorag_dagster.cli.render import hits_table
from autorag_dagster.core.chunking import build_records
from autorag_dagster.core.search import TEXT_WEIGHT, Hit, coverage, hits_json, query_terms, search, where_clause
from autorag_dagster.core.store import SegmentStore, StoreError, embed_records
from autorag_dagster.core.timefmt import clock
from tests.support.search_corpus import QUERIES


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, corpus, minilm) -> SegmentStore:
    store = SegmentStore(str(tmp_path_factory.mktemp("search") / "lancedb"), minilm.model_name, minilm.dim)
    for key, (transcript, tree) in corpus.items():
        store.write_partition(key, embed_records(build_records(transcript, tree), minilm))
    store.maintain()
    return store


def _finds(hits: list[Hit], corpus, key: str, topic: int) -> bool:
    node = corpus[key][1].nodes[topic]
    return any(h.file == key and h.start < node.end and h.end > node.start for h in hits)


def test_paraphrased_questions_find_the_file_and_span_in_the_top_5(indexed, corpus, minilm):
    found = {mode: [] for mode in ("hybrid", "vector")}
    for query, key, topic in QUERIES:
        for mode in found:
            hits = search(indexed, query, embed=minilm, k=5, mode=mode)
            assert len(hits) == 5
            found[mode].append(_finds(hits, corpus, key, topic))
    missed = [q for (q, _, _), ok in zip(QUERIES, found["hybrid"]) if not ok]
    assert not missed, f"hybrid search missed: {missed}"
    assert sum(found["hybrid"]) >= sum(found["vector"])


def test_hybrid_scores_fuse_similarity_with_the_text_match(indexed, minilm):
    query = "barrel adjuster on the brake cable"
    fused = search(indexed, query, embed=minilm, k=5)
    vector = {
        (h.file, h.start, h.kind): h.similarity for h in search(indexed, query, embed=minilm, k=30, mode="vector")
    }
    for hit in fused:
        assert hit.similarity == pytest.approx(vector[(hit.file, hit.start, hit.kind)], abs=1e-5)
        assert hit.score >= (1 - TEXT_WEIGHT) * hit.similarity - 1e-9
    # The rows with every query word score above their similarity alone; without text, hybrid is vector.
    assert fused[0].score > (1 - TEXT_WEIGHT) * fused[0].similarity
    only_vector = search(indexed, query, embed=minilm, k=5, text_weight=0.0)
    assert [h.similarity for h in only_vector] == sorted((h.similarity for h in only_vector), reverse=True)
    assert coverage(query_terms(query), "SPEAKER_00: tighten the cable with the barrel adjuster") == 0.75


def test_text_mode_matches_words_and_hybrid_ranks_by_fusion(indexed, minilm):
    hits = search(indexed, "Sauvignon Blanc", mode="text", k=2)
    assert hits[0].file == "kitchen/dinner-party.wav" and "Sauvignon Blanc" in hits[0].text
    assert hits[0].score > 0
    fused = search(indexed, "barrel adjuster on the brake cable", embed=minilm, k=5)
    assert fused[0].file == "workshop/bike-repair.m4a"
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
def test_filters_by_file_and_speaker(indexed, minilm, mode):
    by_file = search(
        indexed,
        "cabin boots budget chain",
        embed=minilm,
        k=50,
        mode=mode,
        files=["family/mountain-weekend.mp3", "meetings/q3-review.wav"],
    )
    assert by_file and {h.file for h in by_file} <= {"family/mountain-weekend.mp3", "meetings/q3-review.wav"}

    by_speaker = search(indexed, "cabin boots budget chain", embed=minilm, k=50, mode=mode, speakers=["SPEAKER_02"])
    assert by_speaker and all("SPEAKER_02" in h.speakers for h in by_speaker)
    assert {h.file for h in by_speaker} <= {"family/mountain-weekend.mp3", "meetings/q3-review.wav"}

    both = search(
        indexed,
        "cabin boots budget chain",
        embed=minilm,
        k=50,
        mode=mode,
        files=["meetings/q3-review.wav"],
        speakers=["SPEAKER_02", "NOBODY"],
    )
    assert both and all(h.file == "meetings/q3-review.wav" and "SPEAKER_02" in h.speakers for h in both)
    assert search(indexed, "chain", embed=minilm, mode=mode, files=["no/such.wav"]) == []


def test_hits_carry_topic_and_render_as_table_and_json(indexed, minilm):
    hits = search(indexed, "moving companies quotes [laughs]", embed=minilm, k=4)
    topics = [h for h in hits if h.kind == "topic"]
    chunks = [h for h in hits if h.kind == "chunk"]
    assert topics and chunks
    assert all(h.level == 1 and h.path and h.title for h in topics)
    assert all(h.level == 0 and h.path for h in chunks)  # a chunk names its topic node

    data = json.loads(hits_json(hits))
    assert [d["file"] for d in data] == [h.file for h in hits]
    assert set(data[0]) == {
        "file",
        "start",
        "end",
        "speakers",
        "kind",
        "level",
        "path",
        "title",
        "text",
        "score",
        "similarity",
    }

    console = Console(record=True, width=200)
    odd = Hit("a [b]/c.wav", 3725, 3790, ["S"], "chunk", 0, "1", "[bold]x[/bold]", "[laughs] hello", 0.5)
    console.print(hits_table([*hits, odd], query="moving"))
    shown = console.export_text()
    assert hits[0].file in shown and "a [b]/c.wav" in shown
    assert "1:02:05-1:03:10" in shown and "[laughs] hello" in shown and "[bold]x[/bold]" in shown


def test_clear_errors_for_bad_requests(tmp_path, indexed, corpus, minilm):
    with pytest.raises(ValueError, match="query is empty"):
        search(indexed, "  ", embed=minilm)
    with pytest.raises(ValueError, match="mode must be one of"):
        search(indexed, "x", embed=minilm, mode="fuzzy")
    with pytest.raises(ValueError, match="need an embed function"):
        search(indexed, "x")
    fresh = SegmentStore(str(tmp_path / "db"), minilm.model_name, minilm.dim)
    with pytest.raises(StoreError, match="materialise the embeddings"):
        search(fresh, "x", embed=minilm)
    fresh.write_partition("a.wav", embed_records(build_records(*corpus["kitchen/dinner-party.wav"]), minilm))
    with pytest.raises(StoreError, match="no full-text index yet"):
        search(fresh, "spaghetti", embed=minilm)
    assert search(fresh, "spaghetti", embed=minilm, mode="vector")


def test_where_clause_and_clock():
    assert where_clause() is None
    assert where_clause(["it's.wav"], ["A", "B"]) == (
        "file_key IN ('it''s.wav') AND array_has_any(speakers, make_array('A', 'B'))"
    )
    assert (clock(0), clock(75.9), clock(3600)) == ("00:00", "01:15", "1:00:00")


@pytest.fixture()
def cli_env(monkeypatch, indexed):
    from autorag_dagster.settings import get_settings

    monkeypatch.setenv("AUTORAG_LANCEDB_URI", indexed.uri)
    monkeypatch.setenv("AUTORAG_EMBED_MODEL", "all-minilm")
    monkeypatch.setenv("AUTORAG_OLLAMA_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AUTORAG_REQUEST_RETRIES", "0")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_cli_search_prints_json_and_a_table():
    from typer.testing import CliRunner

    from autorag_dagster.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["search", "Chianti", "--mode", "text", "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    # One chunk holds the wine subject (chunks keep to their topic), so one row says Chianti.
    assert len(hits) == 1 and hits[0]["file"] == "kitchen/dinner-party.wav" and "Chianti" in hits[0]["text"]

    filtered = runner.invoke(app, ["search", "Chianti", "--mode", "text", "--json", "--file", "meetings/q3-review.wav"])
    assert filtered.exit_code == 0 and json.loads(filtered.stdout) == []

    table = runner.invoke(app, ["search", "boots blisters", "--mode", "text", "--speaker", "SPEAKER_02"])
    assert table.exit_code == 0 and "family/mountain-weekend.mp3" in table.stdout and "SPEAKER_02" in table.stdout

    unreachable = runner.invoke(app, ["search", "boots", "--mode", "vector"])
    assert unreachable.exit_code == 1 and "127.0.0.1:9" in unreachable.stderr


@pytest.mark.usefixtures("cli_env")
def test_cli_search_names_the_missing_model_table(monkeypatch, local_ollama):
    from typer.testing import CliRunner

    from autorag_dagster.cli import app

    # A server answers, so the configured model is the one searched for; it made no table here.
    monkeypatch.setenv("AUTORAG_OLLAMA_BASE_URL", local_ollama.url)
    monkeypatch.setenv("AUTORAG_EMBED_MODEL", "nomic-embed-text")
    result = CliRunner().invoke(app, ["search", "boots", "--mode", "text"])
    assert result.exit_code == 1
    assert "no table for embedding model 'nomic-embed-text:latest'" in result.stderr
