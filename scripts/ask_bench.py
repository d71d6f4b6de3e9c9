"""Cited answers and retrieval on generated multi-file conversations whose answer spans are known.

    .venv/bin/python scripts/ask_bench.py [--k 5] [--generate] [--json figures.json]

The corpus (``tests/support/search_corpus.py``) is four conversations of three subjects each,
laid out in time with known subject spans, and 20 paraphrased questions whose answer span is
one subject of one file; no question shares a content word with its span's lines, title or
summary. The script

1. starts the packaged Ollama-compatible server (``smollm2:135m`` on llama.cpp, ``all-minilm``
   on sentence-transformers) as a child process;
2. chunks and embeds every file as the ``embeddings`` asset does (chunks and topic nodes) into a
   fresh LanceDB table, and builds its indexes;
3. retrieval: for each question and each mode (hybrid, vector, text), recall@k and MRR, where a
   hit counts only if at least half of its span lies inside the answer span;
4. answers: ``ask`` on each question with the server's LLM (extractive by default for
   ``smollm2:135m``; ``--generate`` makes it generate): citation precision (cited spans that
   overlap the answer span, over all citations), answer recall (questions with a cited span
   overlapping the answer span), and whether out-of-corpus questions get the no-answer reply;
   the best similarity of in-corpus and out-of-corpus questions, which the no-answer threshold
   sits between.

Every figure printed is measured on this run; the JSON marks them ``measured``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autorag_dagster.core.ask import ask  # noqa: E402
from autorag_dagster.core.chunking import build_records  # noqa: E402
from autorag_dagster.core.search import MODES, Hit, search  # noqa: E402
from autorag_dagster.core.store import EmbedFn, SegmentStore, embed_records  # noqa: E402
from tests.support.search_corpus import CORPUS, OUT_OF_CORPUS, QUERIES, answer_span, build_file  # noqa: E402

# Questions nothing in the corpus answers: the first is the one the tests ask.
OUT_OF_CORPUS_QUESTIONS = (
    OUT_OF_CORPUS,
    "how do I renew my passport",
    "what is the boiling point of mercury",
    "recommend a good science fiction novel",
    "what is the speed of light",
)


def build_store(uri: str, embed: EmbedFn, model: str, dim: int) -> SegmentStore:
    store = SegmentStore(uri, model, dim)
    for key in CORPUS:
        store.write_partition(key, embed_records(build_records(*build_file(key)), embed))
    store.maintain()
    return store


def counts(hit: Hit | object, key: str, span: tuple[float, float]) -> bool:
    """A hit counts when it is in the right file and at least half of its span lies inside the answer span."""
    inside = max(0.0, min(hit.end, span[1]) - max(hit.start, span[0]))
    return hit.file == key and inside >= (hit.end - hit.start) / 2


def overlaps(cited, key: str, span: tuple[float, float]) -> bool:
    return cited.file == key and cited.start < span[1] and span[0] < cited.end


def retrieval(store: SegmentStore, embed: EmbedFn, k: int = 5, modes: Sequence[str] = MODES) -> dict:
    """recall@k and MRR per mode over the benchmark questions."""
    figures = {}
    for mode in modes:
        found, reciprocal = 0, 0.0
        for query, key, topic in QUERIES:
            hits = search(store, query, embed=embed, k=k, mode=mode)
            ranks = [rank for rank, hit in enumerate(hits, 1) if counts(hit, key, answer_span(key, topic))]
            found += bool(ranks)
            reciprocal += 1 / ranks[0] if ranks else 0.0
        figures[mode] = {f"recall_at_{k}": round(found / len(QUERIES), 3), "mrr": round(reciprocal / len(QUERIES), 3)}
    return figures


def answers(store: SegmentStore, embed: EmbedFn, client=None, generate: bool | None = None, k: int = 5) -> dict:
    """Citation precision, answer recall and the no-answer replies over the benchmark questions."""
    cited = good = answered = 0
    modes: Counter = Counter()
    fallbacks = 0
    in_corpus_best = []
    rows = []
    for query, key, topic in QUERIES:
        span = answer_span(key, topic)
        result = ask(store, query, embed=embed, client=client, generate=generate, k=k)
        hits = [overlaps(c, key, span) for c in result.citations]
        cited, good, answered = cited + len(hits), good + sum(hits), answered + any(hits)
        modes[result.mode] += 1
        fallbacks += result.fallback is not None
        in_corpus_best.append(result.best_similarity or 0.0)
        rows.append({"question": query, "file": key, "span": span, "mode": result.mode, "answer": result.answer})
    outside = {q: ask(store, q, embed=embed, client=client, generate=generate, k=k) for q in OUT_OF_CORPUS_QUESTIONS}
    return {
        "citation_precision": round(good / cited, 3) if cited else 0.0,
        "answer_recall": round(answered / len(QUERIES), 3),
        "citations": cited,
        "modes": dict(modes),
        "fallbacks_to_extractive": fallbacks,
        "out_of_corpus_no_answer": sum(r.mode == "no_answer" for r in outside.values()),
        "out_of_corpus_questions": len(outside),
        "out_of_corpus_first_no_answer": outside[OUT_OF_CORPUS].mode == "no_answer",
        "in_corpus_min_best_similarity": round(min(in_corpus_best), 3),
        "out_of_corpus_max_best_similarity": round(max(r.best_similarity or 0.0 for r in outside.values()), 3),
        "answers": rows,
    }


def measure(embed: EmbedFn, model: str, dim: int, *, client=None, generate: bool | None = None, k: int = 5) -> dict:
    with tempfile.TemporaryDirectory(prefix="ask-bench-") as work:
        store = build_store(str(Path(work) / "lancedb"), embed, model, dim)
        return {
            "questions": len(QUERIES),
            "files": len({key for _, key, _ in QUERIES}),
            "retrieval": retrieval(store, embed, k),
            "answers": answers(store, embed, client, generate, k),
        }


def _print(figures: dict, k: int) -> None:
    print(f"Measured on this run: {figures['questions']} questions over {figures['files']} files.")
    print("Retrieval (a hit counts if half its span lies in the answer span):")
    for mode, row in figures["retrieval"].items():
        print(f"  {mode:7s} recall@{k} {row[f'recall_at_{k}']:.3f}  MRR {row['mrr']:.3f}")
    a = figures["answers"]
    print(
        f"Answers ({', '.join(f'{n} {m}' for m, n in a['modes'].items())}; {a['fallbacks_to_extractive']} fell back):"
    )
    print(f"  citation precision {a['citation_precision']:.3f} over {a['citations']} citations")
    print(f"  answer recall      {a['answer_recall']:.3f}")
    print(
        f"  out-of-corpus questions answered 'nothing answers': {a['out_of_corpus_no_answer']}"
        f"/{a['out_of_corpus_questions']}"
    )
    print(
        f"  best similarity: in-corpus questions >= {a['in_corpus_min_best_similarity']:.3f},"
        f" out-of-corpus <= {a['out_of_corpus_max_best_similarity']:.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5, help="Hits per question (recall@k) and spans per answer.")
    parser.add_argument(
        "--generate", action="store_true", help="Generated answers with the packaged LLM instead of extractive ones."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args(argv)

    from autorag_dagster.local_run import PACKAGED_EMBED, PACKAGED_LLM
    from autorag_dagster.localserve import SpawnedServer
    from autorag_dagster.ollama import OllamaClient

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ask-bench-models-") as models_dir:
        server = SpawnedServer(
            models_dir=Path(models_dir), pulled=[PACKAGED_LLM, PACKAGED_EMBED], num_parallel=1, max_loaded_models=2
        )
        with server, OllamaClient(server.url, llm_model=PACKAGED_LLM, embed_model=PACKAGED_EMBED) as client:
            dim = client.embedding_dim() or len(client.embed(["x"])[0])
            figures = measure(
                client.embed, PACKAGED_EMBED, dim, client=client, generate=True if args.generate else None, k=args.k
            )
    figures.update(
        measured=True,
        date=dt.datetime.now(dt.UTC).date().isoformat(),
        llm=PACKAGED_LLM,
        embedder=PACKAGED_EMBED,
        seconds=round(time.monotonic() - started, 1),
    )
    _print(figures, args.k)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
