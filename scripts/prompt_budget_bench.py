"""Prompt sizes of the topic stages against a real tokenizer, at a small and the default context.

    .venv/bin/python scripts/prompt_budget_bench.py [--json figures.json]

For two generated recordings (an hour: a 20-minute talk, then ten 4-minute conversations; and 43
minutes: a 15-minute talk, then fourteen 2-minute conversations) and the bundled sample meeting's
script, the script

1. runs the topic stages against the packaged Ollama-compatible server with its deterministic
   backend (fast; its answers do not matter here), at ``num_ctx`` 2048 and 8192, keeping every
   prompt the client sends;
2. counts each prompt's tokens as the server's llama.cpp backend would for the packaged
   ``smollm2:135m``: the GGUF's own chat template and tokenizer;
3. prints, per context, the prompts sent, the windowed prompts per stage, the largest prompt in
   real tokens against the budget (``num_ctx`` less ``num_predict``), and per stage the median and
   the largest ratio of real tokens to the client's estimate (at most 1: the estimate is
   conservative).

Every figure printed is measured on this run; the JSON marks them ``measured``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autorag_dagster.core.topics import build_topic_tree  # noqa: E402
from autorag_dagster.core.topics.stages import TopicConfig  # noqa: E402
from autorag_dagster.localserve import LocalServer  # noqa: E402
from autorag_dagster.localserve.backends.base import LoadSpec  # noqa: E402
from autorag_dagster.localserve.backends.llama_cpp import LlamaCppRunner  # noqa: E402
from autorag_dagster.localserve.catalogue import PACKAGED_CATALOGUE  # noqa: E402
from autorag_dagster.localserve.options import RunnerOptions  # noqa: E402
from autorag_dagster.ollama import OllamaClient, TokenEstimator  # noqa: E402
from tests.support.models import EMBED, LLM  # noqa: E402
from tests.support.synthetic_transcripts import EIGHT_SUBJECTS, SUBJECTS, make_transcript, sample_meeting  # noqa: E402

REAL = "smollm2:135m"
CONTEXTS = (2048, 8192)
STAGE_MARKERS = [
    ("numbered places", "boundaries"),
    ("should be divided into sub-sections", "split"),
    ("summaries of consecutive stretches", "summary merge"),
    ("outline of a recording", "file"),
    ("Transcript (", "summary"),
    ("cannot be used", "re-ask"),
]


class Recording(OllamaClient):
    """A client that keeps every prompt it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[list[dict]] = []

    def chat_structured(self, messages, schema, **kwargs):
        self.sent.append(list(messages))
        return super().chat_structured(messages, schema, **kwargs)


def kind(messages: list[dict]) -> str:
    text = messages[-1]["content"]
    return next((name for marker, name in STAGE_MARKERS if marker in text), "other")


def recordings():
    others = [s for s in SUBJECTS if s != "harbour"]
    hour = [("harbour", 1200.0, ["A"])]
    hour += [(others[i % len(others)], 240.0, [["A", "B"], ["B", "C"], ["C", "A"]][i % 3]) for i in range(10)]
    rounds = [("harbour", 900.0, ["A"])] + [(s, 120.0, sp) for s, _, sp in EIGHT_SUBJECTS if s != "harbour"] * 2
    return [
        make_transcript(hour, key="hour.wav"),
        make_transcript(rounds, key="rounds.wav"),
        sample_meeting()[0],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    runner = LlamaCppRunner(LoadSpec(PACKAGED_CATALOGUE[REAL], RunnerOptions(num_ctx=8192), parallel=1))
    estimator = TokenEstimator()  # the starting figures, never calibrated
    figures: dict = {"date": dt.date.today().isoformat(), "tokenizer": REAL, "contexts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalServer(
            models_dir=Path(tmp) / "models",
            pulled=[LLM, EMBED],
            deterministic=True,
            stand_in_names=True,
            test_routes=True,
        )
        with server:
            for num_ctx in CONTEXTS:
                ratios: dict[str, list[float]] = defaultdict(list)
                windows: dict[str, int] = defaultdict(int)
                largest = sent = 0
                for transcript in recordings():
                    with Recording(server.url, llm_model=LLM, embed_model=EMBED, num_ctx=num_ctx) as client:
                        _, stats = build_topic_tree(transcript, client, config=TopicConfig(give_up_after=0))
                        budget = client.prompt_budget()
                    for stage, count in stats.windows.items():
                        windows[stage] += count
                    for messages in client.sent:
                        counted = runner._prompt(runner._contexts[0], messages, 10**6)[2]
                        ratios[kind(messages)].append(counted / estimator.estimate(REAL, messages))
                        largest, sent = max(largest, counted), sent + 1
                figures["contexts"][str(num_ctx)] = {
                    "prompts_sent": sent,
                    "windowed_prompts": dict(windows),
                    "largest_prompt_tokens": largest,
                    "prompt_budget_tokens": budget,
                    "real_over_estimate": {
                        stage: {"median": round(statistics.median(r), 3), "max": round(max(r), 3), "prompts": len(r)}
                        for stage, r in sorted(ratios.items())
                    },
                }
    runner.close()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["measured"] = True
    for num_ctx, row in figures["contexts"].items():
        print(
            f"num_ctx {num_ctx}: {row['prompts_sent']} prompts, windowed {row['windowed_prompts'] or 'none'}; "
            f"largest {row['largest_prompt_tokens']} smollm2 tokens of a {row['prompt_budget_tokens']}-token budget"
        )
        for stage, r in row["real_over_estimate"].items():
            print(f"  {stage:14s} real/estimate median {r['median']:.3f}  max {r['max']:.3f}  ({r['prompts']} prompts)")
    print(f"measured in {figures['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
