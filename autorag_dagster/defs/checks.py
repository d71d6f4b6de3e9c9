"""Asset checks: thin wrappers over ``core.checks``; they run with every materialisation."""

from collections.abc import Callable, Mapping

from dagster import AssetCheckResult, AssetCheckSeverity, AssetIn, MetadataValue, asset_check

from autorag_dagster.core import checks
from autorag_dagster.core.audio import load_samples
from autorag_dagster.core.types import AudioInfo, Diarization, SpeakerTranscript, Transcript
from autorag_dagster.defs.assets.speech import audio, diarization, speaker_transcript, transcript
from autorag_dagster.defs.partitions import audio_files


def result(problems_by_file: Mapping[str, list[str]]) -> AssetCheckResult:
    """One result for the files of this run: passed when no file has a problem."""
    failed = {key: problems for key, problems in problems_by_file.items() if problems}
    text = "\n".join(f"- **{key}**: " + "; ".join(problems) for key, problems in failed.items())
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.ERROR,
        description=None if not failed else f"{len(failed)} file(s) failed:\n{text}",
        metadata={"files_checked": len(problems_by_file), "problems": MetadataValue.md(text or "none")},
    )


def each(values: Mapping[str, object], fn: Callable[[str], list[str]]) -> AssetCheckResult:
    return result({key: fn(key) for key in values})


def speech_expected(info: AudioInfo) -> bool:
    return checks.has_speech_energy(load_samples(info))


@asset_check(asset=audio, partitions_def=audio_files, blocking=True, description="Decoded, non-empty, 16 kHz, hashed.")
def audio_is_decoded(audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(audio, lambda k: checks.check_audio(audio[k]))


@asset_check(
    asset=transcript, partitions_def=audio_files, blocking=True, additional_ins={"audio": AssetIn("audio")},
    description="Words ordered, inside the audio's duration, non-empty for speech.",
)
def transcript_words_valid(transcript: dict[str, Transcript], audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(transcript, lambda k: checks.check_transcript(transcript[k], audio[k].duration_s, speech_expected(audio[k])))


@asset_check(
    asset=diarization, partitions_def=audio_files, blocking=True, additional_ins={"audio": AssetIn("audio")},
    description="Turns inside the duration, at least one speaker.",
)
def diarization_turns_valid(diarization: dict[str, Diarization], audio: dict[str, AudioInfo]) -> AssetCheckResult:
    return each(diarization, lambda k: checks.check_diarization(diarization[k], audio[k].duration_s, speech_expected(audio[k])))


@asset_check(
    asset=speaker_transcript, partitions_def=audio_files, blocking=True,
    additional_ins={"transcript": AssetIn("transcript")},
    description="Every transcribed word is attributed to one speaker.",
)
def speaker_words_attributed(speaker_transcript: dict[str, SpeakerTranscript], transcript: dict[str, Transcript]) -> AssetCheckResult:
    return each(speaker_transcript, lambda k: checks.check_speaker_transcript(speaker_transcript[k], transcript[k]))
