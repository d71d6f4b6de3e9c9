"""Topic-tree quality on generated recordings whose subject spans are known.

    .venv/bin/python scripts/topic_bench.py --files sample,five --backend both --json topics.json

For each recording (``sample``: the bundled three-subject meeting; ``five``: the five-subject
podcast; ``long``: ``--minutes`` of subject blocks) it

1. speaks the labelled script with espeak-ng into ``--work`` (reused while the script is the same);
2. runs the real speech pipeline once: decode (``prepare_audio``), faster-whisper with the packaged
   ``tiny.en``, the Resemblyzer diarizer, speaker alignment; with ``--reuse-speech`` a speaker
   transcript saved by an earlier run on the same audio is read back instead (its seconds are then
   reported as not measured); ``--speech script`` skips it and gives the stages the script's own
   words and speakers (no ASR errors: what the topic stages alone can do);
3. builds the topic tree with ``build_topic_tree`` on each backend: ``packaged`` (``smollm2:135m``
   on llama.cpp, served by the project's Ollama-compatible server as a child process, the way the
   laptop run serves it) and ``deterministic`` (the same server's schema-valid stand-in answers);
4. compares the tree with the truth (``autorag_dagster.core.topics.quality.evaluate``): level-1
   nodes against true subjects, boundary F1 (8 s tolerance), Pk, share of level-1 titles naming
   their subject, titles echoing prompt scaffolding or made of the span's first words, fallbacks
   per stage, LLM calls and seconds per stage.

Every figure printed is measured on this run; the JSON marks each with ``measured``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # more threads than free cores stall torch and CTranslate2
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console
from rich.table import Table

from autorag_dagster import samples
from autorag_dagster.core.topics.quality import TopicQuality, evaluate
from autorag_dagster.core.types import SpeakerTranscript

FILES = ("sample", "five", "long")
BACKENDS = ("packaged", "deterministic")
PACKAGED_LLM = "smollm2:135m"
DETERMINISTIC_LLM = "deterministic-llm:latest"  # the local server's test double, under its own name
EMBED = {"packaged": "all-minilm:latest", "deterministic": "deterministic-embed:latest"}
SPEECH_STAGES = ("decode", "transcribe", "diarize", "align")

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 200)  # wide tables in logs and files


def say(message: str) -> None:
    console.log(message)


# --- recordings ----------------------------------------------------------------------------------
def script_for(name: str, minutes: float) -> list[tuple[str, str, str]]:
    if name == "sample":
        return samples.LABELLED_SAMPLE_MEETING
    if name == "five":
        return samples.FIVE_SUBJECT_PODCAST
    if name == "long":
        return samples.long_script(minutes)
    raise ValueError(f"unknown file {name!r}; known: {', '.join(FILES)}")


def file_key(name: str, minutes: float) -> str:
    return f"long-{minutes:g}min.wav" if name == "long" else f"{name}.wav"


# --- speech --------------------------------------------------------------------------------------
@dataclass
class Speech:
    transcript: SpeakerTranscript
    seconds: dict[str, float]
    load_seconds: dict[str, float]
    measured: bool
    speakers_found: int
    source: str = "asr"  # "asr": the speech pipeline on the audio; "script": the script itself


def script_speech(conversation: samples.Conversation, key: str) -> Speech:
    """The script's own words and speakers, timed as spoken: perfect ASR and diarization."""
    transcript = samples.speaker_transcript(conversation, key=key)
    return Speech(transcript, {}, {}, measured=False, speakers_found=len(transcript.speakers), source="script")


class SpeechPipeline:
    """tiny.en and the Resemblyzer diarizer, loaded once (on first use) for every recording."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._transcriber = None
        self._diarizer = None
        self.load_seconds: dict[str, float] = {}

    def _load(self):
        if self._transcriber is None:
            from autorag_dagster.core.diarize import ResemblyzerDiarizer
            from autorag_dagster.core.transcribe import Transcriber

            self._transcriber = Transcriber(cpu_threads=self.threads).load()
            self._diarizer = ResemblyzerDiarizer(cpu_threads=self.threads).load()
            self.load_seconds = {
                "whisper": round(self._transcriber.load_s or 0.0, 3),
                "diarizer": round(self._diarizer.load_s or 0.0, 3),
            }

    def run(self, conversation: samples.Conversation, key: str, work: Path, reuse: bool) -> Speech:
        from autorag_dagster.core.audio import sha256_file

        digest = sha256_file(conversation.path)[:16]
        saved = work / "speech" / f"{Path(key).stem}-{digest}.json"
        if reuse and saved.exists():
            stored = json.loads(saved.read_text(encoding="utf-8"))
            return Speech(
                SpeakerTranscript.model_validate(stored["transcript"]),
                stored["seconds"],
                stored["load_seconds"],
                measured=False,
                speakers_found=stored["speakers_found"],
                source="asr (reused)",
            )
        from autorag_dagster.core.align import assign_speakers
        from autorag_dagster.core.audio import load_samples, prepare_audio

        self._load()
        seconds: dict[str, float] = {}

        def timed(stage: str, call):
            started = time.perf_counter()
            result = call()
            seconds[stage] = round(time.perf_counter() - started, 3)
            return result

        info = timed("decode", lambda: prepare_audio(conversation.path, key, work / "pcm" / Path(key).stem))
        pcm = load_samples(info)
        transcription = timed("transcribe", lambda: self._transcriber.transcribe(pcm, key))
        diarization = timed("diarize", lambda: self._diarizer.diarize(pcm, info.sample_rate, key))
        transcript = timed("align", lambda: assign_speakers(transcription.transcript, diarization))
        speech = Speech(
            transcript, seconds, dict(self.load_seconds), measured=True, speakers_found=len(diarization.speakers)
        )
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(
            json.dumps(
                {
                    "transcript": transcript.model_dump(),
                    "seconds": seconds,
                    "load_seconds": speech.load_seconds,
                    "speakers_found": speech.speakers_found,
                }
            ),
            encoding="utf-8",
        )
        return speech

    def close(self) -> None:
        if self._transcriber is not None:
            self._transcriber.close()
            self._diarizer.close()
            self._transcriber = self._diarizer = None


# --- LLM backends ----------------------------------------------------------------------------------
@dataclass
class Backend:
    name: str
    llm: str
    url: str
    slots: int
    start_s: float


@contextmanager
def serve(name: str, work: Path, slots: int) -> Iterator[Backend]:
    """The project's Ollama-compatible server: a child process with smollm2 on llama.cpp
    (``packaged``), or in this process with the deterministic stand-in (``deterministic``)."""
    from autorag_dagster.localserve import LocalServer, SpawnedServer

    started = time.perf_counter()
    models_dir = work / "localserve-models" / name
    if name == "packaged":
        server = SpawnedServer(
            models_dir=models_dir, pulled=[PACKAGED_LLM], num_parallel=slots, max_loaded_models=1, keep_alive="5m"
        )
        llm = PACKAGED_LLM
    elif name == "deterministic":
        server = LocalServer(
            models_dir=models_dir,
            pulled=[DETERMINISTIC_LLM],
            num_parallel=slots,
            max_loaded_models=1,
            keep_alive="5m",
            deterministic=True,
        )
        llm = DETERMINISTIC_LLM
    else:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    with server:
        yield Backend(name, llm, server.url, slots, round(time.perf_counter() - started, 3))


@dataclass
class TopicRun:
    backend: str
    model: str
    quality: TopicQuality
    stats: Any  # TopicStats
    seconds: float
    outline: list[dict] = field(default_factory=list)


def fallback_counts(stats: Any) -> dict[str, int]:
    counts = getattr(stats, "fallback_counts", None)
    if isinstance(counts, dict) and counts:
        return {str(k): int(v) for k, v in counts.items()}
    return dict(Counter(f.stage for f in stats.fallbacks))


def build_tree(backend: Backend, transcript: SpeakerTranscript, truth, num_ctx: int) -> TopicRun:
    from autorag_dagster.core.topics import build_topic_tree
    from autorag_dagster.ollama import OllamaClient

    with OllamaClient(
        backend.url,
        llm_model=backend.llm,
        embed_model=EMBED[backend.name],
        num_ctx=num_ctx,
        keep_alive="5m",
        timeout=900,
        max_concurrency=backend.slots,
    ) as client:
        started = time.perf_counter()
        tree, stats = build_topic_tree(transcript, client, progress=say)
        seconds = round(time.perf_counter() - started, 3)
    quality = evaluate(tree, truth, transcript=transcript)
    outline = [
        {
            "id": q.id,
            "start": round(q.start, 1),
            "end": round(q.end, 1),
            "title": q.title,
            "subject": q.subject,
            "names_subject": q.names_subject,
            "prompt_echo": q.prompt_echo,
            "first_words": q.first_words,
        }
        for q in quality.per_node
    ]
    return TopicRun(backend.name, backend.llm, quality, stats, seconds, outline)


# --- report ----------------------------------------------------------------------------------------
def run_json(run: TopicRun) -> dict[str, Any]:
    q = run.quality
    stats = run.stats
    figures = {
        "level1_nodes": q.level1_nodes,
        "true_subjects": q.true_subjects,
        "nodes": q.nodes,
        "boundary_precision": round(q.boundary_precision, 4),
        "boundary_recall": round(q.boundary_recall, 4),
        "boundary_f1": round(q.boundary_f1, 4),
        "pk": round(q.pk, 4),
        "titles_naming_share": round(q.titles_naming_share, 4),
        "prompt_echo_titles": q.prompt_echo_titles,
        "prompt_echo_summaries": q.prompt_echo_summaries,
        "first_words_titles": q.first_words_titles,
        "fallbacks": fallback_counts(stats),
        "llm_calls": stats.llm_calls,
        "prompt_tokens": stats.prompt_tokens,
        "eval_tokens": stats.eval_tokens,
        "stage_seconds": stats.stage_seconds,
        "topic_seconds": run.seconds,
    }
    return {
        "backend": run.backend,
        "model": run.model,
        "figures": figures,
        "measured": dict.fromkeys(figures, True),
        "tolerance_s": q.tolerance_s,
        "pk_k_s": round(q.pk_k_s, 3),
        "true_starts": [round(s, 2) for s in q.true_starts],
        "pred_starts": [round(s, 2) for s in q.pred_starts],
        "fallback_list": [f.model_dump() for f in stats.fallbacks],
        "outline": run.outline,
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "system": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def print_report(report: dict[str, Any]) -> None:
    table = Table(title="Topic quality (every figure measured on this run)")
    for column in (
        "file",
        "backend",
        "L1 / true",
        "boundary F1",
        "P / R",
        "Pk",
        "titles naming",
        "echo / first-words titles",
        "fallbacks",
        "LLM calls",
        "topic s",
    ):
        table.add_column(column)
    for entry in report["files"]:
        for run in entry["runs"]:
            f = run["figures"]
            fallbacks = ", ".join(f"{k} {v}" for k, v in f["fallbacks"].items()) or "0"
            table.add_row(
                entry["file"],
                f"{run['backend']} ({run['model']})",
                f"{f['level1_nodes']} / {f['true_subjects']}",
                f"{f['boundary_f1']:.2f}",
                f"{f['boundary_precision']:.2f} / {f['boundary_recall']:.2f}",
                f"{f['pk']:.2f}",
                f"{f['titles_naming_share']:.2f}",
                f"{f['prompt_echo_titles']} / {f['first_words_titles']}",
                fallbacks,
                str(f["llm_calls"]),
                f"{f['topic_seconds']:.1f}",
            )
    out.print(table)

    speech = Table(title="Speech pipeline and topic stages (seconds)")
    for column in (
        "file",
        "audio s",
        "speakers found / true",
        *SPEECH_STAGES,
        "speech measured",
        "backend",
        "topic stages",
    ):
        speech.add_column(column)
    for entry in report["files"]:
        s = entry["speech"]
        for run in entry["runs"] or [None]:
            stages = "" if run is None else " ".join(f"{k} {v:.1f}" for k, v in run["figures"]["stage_seconds"].items())
            speech.add_row(
                entry["file"],
                f"{entry['duration_s']:.1f}",
                f"{s['speakers_found']} / {s['speakers_true']}",
                *(f"{s['seconds'][k]:.1f}" if k in s["seconds"] else "-" for k in SPEECH_STAGES),
                "yes" if s["measured"] else ("no (reused)" if s["source"] == "asr (reused)" else "no (script)"),
                "" if run is None else run["backend"],
                stages,
            )
    out.print(speech)

    for entry in report["files"]:
        truth = ", ".join(f"{subject} {start:.0f}-{end:.0f}" for start, end, subject in entry["subjects"])
        out.print(f"[bold]{entry['file']}[/bold] true subjects: {truth}")
        for run in entry["runs"]:
            out.print(f"  {run['backend']}:")
            for node in run["outline"]:
                marks = "".join(
                    m
                    for m, on in (("N", node["names_subject"]), ("E", node["prompt_echo"]), ("F", node["first_words"]))
                    if on
                )
                out.print(
                    f"    {node['id']:<5} {node['start']:7.1f}-{node['end']:7.1f} [{node['subject']}] "
                    f"{node['title']!r} {marks}",
                    markup=False,
                    highlight=False,
                )
    out.print("marks: N names its subject, E echoes prompt scaffolding, F is the span's first words", highlight=False)


# --- main ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--files", default="sample,five", help=f"comma-separated, of {', '.join(FILES)} (default sample,five)"
    )
    parser.add_argument("--backend", default="both", choices=[*BACKENDS, "both"])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the 'long' recording (default 10)")
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for audio and caches (default: a temporary one)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--num-ctx", type=int, default=8192, help="num_ctx of every LLM call (default 8192)")
    parser.add_argument(
        "--slots", type=int, default=1, help="server slots and requests in flight for the packaged LLM (default 1)"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for whisper and the diarizer (default 1)")
    parser.add_argument(
        "--speech",
        default="asr",
        choices=["asr", "script"],
        help="asr: the speech pipeline on the audio (default); script: the script's own words and "
        "speakers, timed as spoken (no ASR errors; isolates the topic stages)",
    )
    parser.add_argument(
        "--reuse-speech",
        action="store_true",
        help="reuse the speaker transcript of an earlier run on the same audio (speech seconds then not measured)",
    )
    args = parser.parse_args(argv)
    args.files = [f.strip() for f in args.files.split(",") if f.strip()]
    unknown = [f for f in args.files if f not in FILES]
    if unknown or not args.files:
        parser.error(f"--files: unknown {unknown}; known: {', '.join(FILES)}")
    args.backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    samples.require_espeak()
    with tempfile.TemporaryDirectory(prefix="topic-bench-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "scripts/topic_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine(),
            "settings": {
                "files": args.files,
                "backends": args.backends,
                "minutes": args.minutes,
                "num_ctx": args.num_ctx,
                "packaged_slots": args.slots,
                "threads": args.threads,
                "whisper": "tiny.en (packaged, int8, CPU)",
                "diarizer": "resemblyzer",
                "speech": args.speech,
                "tolerance_s": 8.0,
            },
            "files": [],
        }
        recordings = []
        for name in args.files:
            key = file_key(name, args.minutes)
            say(f"{name}: speaking the script into {work / 'audio' / key} (reused when unchanged)")
            conversation = samples.write_labelled(script_for(name, args.minutes), work / "audio" / key)
            recordings.append((name, key, conversation))

        pipeline = SpeechPipeline(threads=args.threads)
        speech: dict[str, Speech] = {}
        try:
            for name, key, conversation in recordings:
                if args.speech == "script":
                    speech[name] = script_speech(conversation, key)
                    continue
                say(f"{name}: speech pipeline on {conversation.duration_s:.0f} s of audio")
                speech[name] = pipeline.run(conversation, key, work, args.reuse_speech)
        finally:
            pipeline.close()

        runs: dict[str, list[TopicRun]] = {name: [] for name, _, _ in recordings}
        server_start: dict[str, float] = {}
        for backend_name in args.backends:
            slots = args.slots if backend_name == "packaged" else 8
            with serve(backend_name, work, slots) as backend:
                server_start[backend_name] = backend.start_s
                for name, _, conversation in recordings:
                    say(f"{name}: topic tree with {backend.name} ({backend.llm})")
                    runs[name].append(build_tree(backend, speech[name].transcript, conversation, args.num_ctx))

        for name, key, conversation in recordings:
            s = speech[name]
            report["files"].append(
                {
                    "file": name,
                    "key": key,
                    "audio": str(conversation.path),
                    "duration_s": round(conversation.duration_s, 3),
                    "subjects": [[round(a, 2), round(b, 2), subject] for a, b, subject in conversation.subjects],
                    "speech": {
                        "source": s.source,
                        "seconds": s.seconds,
                        "load_seconds": s.load_seconds,
                        "measured": s.measured,
                        "words": sum(len(u.words) for u in s.transcript.utterances),
                        "utterances": len(s.transcript.utterances),
                        "speakers_found": s.speakers_found,
                        "speakers_true": len(conversation.speakers),
                    },
                    "runs": [run_json(run) for run in runs[name]],
                }
            )
        report["server_start_s"] = server_start
    print_report(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
        say(f"Wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
