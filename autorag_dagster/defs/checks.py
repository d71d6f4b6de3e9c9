"""Asset checks: thin wrappers over ``core.checks``; they run with every materialisation."""

from collections.abc import Callable, Mapping
from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, AssetIn, MetadataValue, asset_check

from autorag_dagster.core import checks
from autorag_dagster.core.audio import load_samples
from autorag_dagster.core.chunking import build_records
from autorag_dagster.core.markdown import md_escape
from autorag_dagster.core.speakers import with_names
from autorag_dagster.core.store import SegmentStore
from autorag_dagster.core.topics import check_tree
from autorag_dagster.core.types import (
    AudioInfo,
    Diarization,
    EmbeddingsWrite,
    SpeakerTranscript,
    TopicTree,
    Transcript,
    VizPage,
)
from autorag_dagster.defs.assets.search import embeddings
from autorag_dagster.defs.assets.speech import audio, diarization, speaker_transcript, transcript
from autorag_dagster.defs.assets.topics import topic_tree
from autorag_dagster.defs.assets.viz import viz
from autorag_dagster.defs.partitions import audio_files
from autorag_dagster.defs.resources import OllamaResource, StorageResource


def result(
    problems_by_file: Mapping[str, list[str]], severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
) -> AssetCheckResult:
    """One result for the files of this run: passed when no file has a problem."""
    failed = {key: problems for key, problems in problems_by_file.items() if problems}
    text = "\n".join(f"- **{md_escape(key)}**: " + md_escape("; ".join(problems)) for key, problems in failed.items())
    return AssetCheckResult(
        passed=not failed,
        severity=severity,
        description=None if not failed else f"{len(failed)} file(s) failed:\n{text}",
        metadata={
            "files_checked": len(problems_by_file),
            "problems": MetadataValue.md(text or "none"),
            # Per file, for programs: one check result covers every file of a multi-file run.
            "failed_files": MetadataValue.json({key: "; ".join(problems) for key, problems in failed.items()}),
        },
    )


def each(values: Mapping[str, object], fn: Callable[[str], list[str]]) -> AssetCheckResult:
    return result({key: fn(key) for key in values})


def speech_expected(info: AudioInfo) -> bool:
    return checks.has_speech_energy(load_samples(info))


@asset_check(asset=audio, partitions_def=audio_files, blocking=True, description="Decoded, non-empty, 16 kHz, hashed.")
def audio_is_decoded(audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(audio, lambda k: checks.check_audio(audio[k]))


@asset_check(
    asset=transcript,
    partitions_def=audio_files,
    blocking=True,
    additional_ins={"audio": AssetIn("audio")},
    description="Words ordered, inside the audio's duration, non-empty for speech.",
)
def transcript_words_valid(transcript: dict[str, Transcript], audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(
        transcript, lambda k: checks.check_transcript(transcript[k], audio[k].duration_s, speech_expected(audio[k]))
    )


@asset_check(
    asset=diarization,
    partitions_def=audio_files,
    blocking=True,
    additional_ins={"audio": AssetIn("audio")},
    description="Turns inside the duration, at least one speaker.",
)
def diarization_turns_valid(diarization: dict[str, Diarization], audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(
        diarization, lambda k: checks.check_diarization(diarization[k], audio[k].duration_s, speech_expected(audio[k]))
    )


@asset_check(
    asset=speaker_transcript,
    partitions_def=audio_files,
    blocking=True,
    additional_ins={"transcript": AssetIn("transcript")},
    description="Every transcribed word is attributed to one speaker.",
)
def speaker_words_attributed(
    speaker_transcript: dict[str, SpeakerTranscript], transcript: dict[str, Transcript]
) -> AssetCheckResult:
    return each(speaker_transcript, lambda k: checks.check_speaker_transcript(speaker_transcript[k], transcript[k]))


@asset_check(
    asset=topic_tree,
    partitions_def=audio_files,
    blocking=True,
    description="L1 nodes tile the whole duration; children tile their parent; titles and summaries; depth bounded.",
)
def topic_tree_tiles(topic_tree: dict[str, TopicTree]) -> AssetCheckResult:
    return each(topic_tree, lambda k: check_tree(topic_tree[k]))


@asset_check(
    asset=topic_tree,
    partitions_def=audio_files,
    blocking=False,
    additional_ins={"speaker_transcript": AssetIn("speaker_transcript")},
    description="(warning) No stage fell back; every title grounded in its span; no prompt echo or first-words titles.",
)
def topic_tree_quality(
    topic_tree: dict[str, TopicTree], speaker_transcript: dict[str, SpeakerTranscript], storage: StorageResource
) -> AssetCheckResult:
    def one(key: str) -> list[str]:
        stats = storage.layout.read_topic_stats(key)
        fallbacks = stats.get("fallbacks") if stats is not None else None
        return checks.check_topic_quality(topic_tree[key], fallbacks, speaker_transcript[key])

    return result({key: one(key) for key in topic_tree}, severity=AssetCheckSeverity.WARN)


@asset_check(
    asset=embeddings,
    partitions_def=audio_files,
    blocking=True,
    additional_ins={"speaker_transcript": AssetIn("speaker_transcript"), "topic_tree": AssetIn("topic_tree")},
    description="One row per chunk and node, no duplicates after a rerun, the model's dimension, no NaN.",
)
def embeddings_rows_valid(
    embeddings: dict[str, EmbeddingsWrite],
    speaker_transcript: dict[str, SpeakerTranscript],
    topic_tree: dict[str, TopicTree],
    storage: StorageResource,
    ollama: OllamaResource,
) -> AssetCheckResult:
    with ollama.get_client() as client:
        model_dim = client.embedding_dim(ollama.embed_model)
    store = SegmentStore.for_model(storage.layout.lancedb, ollama.embed_model)
    return each(
        embeddings,
        lambda k: checks.check_embeddings(
            store.partition_summary(k),
            len(build_records(with_names(speaker_transcript[k], speaker_transcript[k].names), topic_tree[k])),
            model_dim,
        ),
    )


@asset_check(
    asset=viz,
    partitions_def=audio_files,
    blocking=True,
    additional_ins={"speaker_transcript": AssetIn("speaker_transcript"), "topic_tree": AssetIn("topic_tree")},
    description="The page exists, names every topic node, and escapes transcript text.",
)
def viz_page_complete(
    viz: dict[str, VizPage], speaker_transcript: dict[str, SpeakerTranscript], topic_tree: dict[str, TopicTree]
) -> AssetCheckResult:
    def one(key: str) -> list[str]:
        page = Path(viz[key].page)
        if not page.exists():
            return [f"{page} does not exist"]
        named = with_names(speaker_transcript[key], speaker_transcript[key].names)  # as the page shows it
        return checks.check_viz_page(page.read_text(encoding="utf-8"), topic_tree[key], named)

    return each(viz, one)
