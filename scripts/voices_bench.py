"""Cross-file speaker identity on a generated library whose voices are known.

    .venv/bin/python scripts/voices_bench.py --work /tmp/voices-bench --json voices.json

1. speaks ``samples.VOICE_LIBRARY`` (four files on four subjects, five voices: three espeak-ng,
   two flite; four of them in two files; two voices say their names, each in one file) into
   ``--work``;
2. decodes each file and diarizes it with the offline Resemblyzer diarizer (the default
   backend), which keeps one voice print per local speaker, and transcribes it with the
   packaged Whisper model;
3. clusters the voice prints into identities (``core.voices.cluster_voices``) at each
   ``--thresholds`` value, and scores them against the true voices with B-cubed precision,
   recall and F1 (each local speaker is an item; its true voice is the one that speaks most
   of its turns);
4. checks that IDs are stable: the library clustered from its first two files, then from all
   four starting from that registry, keeps every ID of the first two files;
5. suggests names from each file's words (``core.name_suggestions``), gathers them per identity
   at the default threshold as ``autorag speakers list`` does, and counts the introductions of
   the scripts that became the right suggestion (the right name, for the local speaker and the
   identity of the voice that said it) and the suggestions that are none of these.

Every figure printed is measured on this run. Needs espeak-ng and flite.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autorag_dagster.core.align import assign_speakers
from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.diarize import ResemblyzerDiarizer
from autorag_dagster.core.name_suggestions import suggest_names
from autorag_dagster.core.speakers import SpeakerNames, speaker_rows
from autorag_dagster.core.transcribe import Transcriber
from autorag_dagster.core.voices import VoicesConfig, b_cubed, changed_files, cluster_voices, collect_voices
from autorag_dagster.samples import VOICE_LIBRARY, introductions, suggested_names, true_voices, write_voice_library

DEFAULT_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def run(work: Path, thresholds: list[float]) -> dict:
    started = time.perf_counter()
    conversations = write_voice_library(work / "audio")
    diarizer = ResemblyzerDiarizer(cpu_threads=1).load()
    diarizations, transcripts = {}, {}
    try:
        with Transcriber(cpu_threads=1) as transcriber:
            for key, conversation in conversations.items():
                info = prepare_audio(conversation.path, key, work / "pcm" / key)
                samples = load_samples(info)
                diarizations[key] = diarizer.diarize(samples, info.sample_rate, key)
                transcripts[key] = assign_speakers(transcriber.transcribe(samples, key).transcript, diarizations[key])
                transcripts[key].name_suggestions = suggest_names(transcripts[key])
    finally:
        diarizer.close()
    speech_s = time.perf_counter() - started
    truth = true_voices(diarizations, conversations)
    samples = collect_voices(diarizations.values())
    default = VoicesConfig().voice_threshold
    rows = []
    for threshold in sorted(set(thresholds) | {default}):
        registry = cluster_voices(samples, config=VoicesConfig(voice_threshold=threshold))
        precision, recall, f1 = b_cubed(registry.assignments(), truth)
        rows.append(
            {
                "threshold": threshold,
                "default": threshold == default,
                "identities": len(registry.identities),
                "precision": round(precision, 3),
                "recall": round(recall, 3),
                "f1": round(f1, 3),
            }
        )
    keys = sorted(diarizations)
    first = cluster_voices(collect_voices(diarizations[k] for k in keys[:2]))
    later = cluster_voices(samples, first)
    stable = all(later.files_of().get(k) == first.files_of().get(k) for k in keys[:2])
    said = [(key, name, voice, voice) for key in keys for voice, name in introductions(VOICE_LIBRARY[key])]
    listed = speaker_rows(cluster_voices(samples), SpeakerNames(), transcripts)
    found = suggested_names(listed, truth)
    return {
        "files": len(conversations),
        "voices": len({v for c in conversations.values() for v in c.speakers}),
        "audio_s": round(sum(c.duration_s for c in conversations.values()), 1),
        "local_speakers": len(samples),
        "true_voice_per_local_speaker": {f"{k[0]}:{k[1]}": v for k, v in sorted(truth.items())},
        "speech_seconds": round(speech_s, 1),
        "thresholds": rows,
        "stable_ids_when_files_arrive": stable,
        "files_relabelled_when_two_arrive": changed_files(first, later),
        "introductions": [list(i) for i in said],
        "introductions_found": sum(i in found for i in said),
        "wrong_suggestions": sum(f not in said for f in found),
        "suggestions": [list(f) for f in found],
        "measured": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="Folder for the generated audio (default: a temp dir).")
    parser.add_argument(
        "--thresholds",
        default=",".join(map(str, DEFAULT_THRESHOLDS)),
        help="Cosine-distance thresholds to score, comma-separated (the default one is always scored).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the report here as JSON.")
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.work or Path(tmp), thresholds)
    print(
        f"{report['files']} files, {report['voices']} voices, {report['local_speakers']} local speakers, "
        f"{report['audio_s']} s of audio (speech pipeline {report['speech_seconds']} s)"
    )
    print(f"{'threshold':>9}  {'identities':>10}  {'precision':>9}  {'recall':>6}  {'B-cubed F1':>10}")
    for row in report["thresholds"]:
        mark = "  (default)" if row["default"] else ""
        print(
            f"{row['threshold']:>9}  {row['identities']:>10}  {row['precision']:>9.3f}  {row['recall']:>6.3f}  "
            f"{row['f1']:>10.3f}{mark}"
        )
    print(f"IDs of the first two files kept when the other two arrive: {report['stable_ids_when_files_arrive']}")
    print(
        f"Name suggestions (measured): {report['introductions_found']} of {len(report['introductions'])} "
        f"introductions found for the right speaker and identity, {report['wrong_suggestions']} wrong suggestions"
    )
    for file, name, local_voice, identity_voice in report["suggestions"]:
        print(f"  {file}: {name!r} for {local_voice}'s local speaker, in {identity_voice}'s identity")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
