"""Speech assets: ``audio`` -> ``transcript`` + ``diarization`` -> ``speaker_transcript``.

Each step handles every partition of its run, loading its model once (see ``partitions``).
"""

from dagster import AssetExecutionContext, AssetKey, MetadataValue

from autorag_dagster.core.align import assign_speakers
from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.exports import export_diarization, export_speaker_transcript, export_transcript
from autorag_dagster.core.keys import validate_key
from autorag_dagster.core.name_suggestions import suggest_names
from autorag_dagster.core.speakers import display_names, with_names
from autorag_dagster.core.types import AudioInfo, Diarization, SpeakerTranscript, Transcript
from autorag_dagster.defs.assets.common import per_file, per_file_asset, report
from autorag_dagster.defs.metadata import (
    excerpt,
    links,
    mmss,
    name_suggestions_table,
    talk_time_table,
    utterance_excerpt,
)
from autorag_dagster.defs.resources import GpuResource, SpeechResource, StorageResource


@per_file_asset(group="speech", code_version="audio-1", kinds={"ffmpeg"})
def audio(context: AssetExecutionContext, storage: StorageResource) -> dict[str, AudioInfo]:
    """The file probed and decoded once to 16 kHz mono float32; duration, channels, sha256."""

    def one(key: str) -> AudioInfo:
        return prepare_audio(validate_key(storage.audio_dir, key), key, storage.layout.file_dir(key))

    infos = per_file(context, context.partition_keys, one, what="Decoding")
    report(
        context,
        infos,
        one=lambda key, info: {
            "duration": mmss(info.duration_s),
            "duration_s": info.duration_s,
            "source": MetadataValue.path(info.path),
            "codec": info.codec or "?",
            "source_sample_rate": info.source_sample_rate,
            "source_channels": info.source_channels,
            "sha256": info.sha256,
        },
        row=lambda key, info: {"duration": mmss(info.duration_s), "codec": info.codec},
    )
    return infos


@per_file_asset(group="speech", code_version="transcript-1", kinds={"whisper"}, gpu=True)
def transcript(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speech: SpeechResource,
    storage: StorageResource,
    gpu: GpuResource,
) -> dict[str, Transcript]:
    """faster-whisper with VAD and word timestamps; JSON, SRT and VTT exports per file."""
    stats: dict[str, dict] = {}
    with gpu.tenant(context, "whisper"), speech.new_transcriber() as transcriber:

        def one(key: str) -> Transcript:
            result = transcriber.transcribe(load_samples(audio[key]), key=key)
            exports = export_transcript(result.transcript, storage.layout.file_dir(key))
            stats[key] = {"rtf": result.realtime_factor, "exports": exports}
            return result.transcript

        transcripts = per_file(context, audio, one, what="Transcribing")
    for warning in transcriber.warnings:
        context.log.warning(warning)

    report(
        context,
        transcripts,
        common={
            "model": transcriber.model,
            "device": transcriber.loaded_device or "?",
            "model_load_s": round(transcriber.load_s or 0.0, 2),
        },
        one=lambda key, t: {
            "duration": mmss(t.duration_s),
            "language": t.language,
            "word_count": len(t.words),
            "realtime_factor": round(stats[key]["rtf"], 4),
            "excerpt": excerpt(t.text),
            "exports": links(stats[key]["exports"]),
        },
        row=lambda key, t: {"language": t.language, "words": len(t.words), "rtf": f"{stats[key]['rtf']:.3f}"},
    )
    return transcripts


@per_file_asset(group="speech", code_version="diarization-2", kinds={"pytorch"}, gpu=True)
def diarization(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speech: SpeechResource,
    storage: StorageResource,
    gpu: GpuResource,
) -> dict[str, Diarization]:
    """Who spoke when: pyannote.audio or the offline Resemblyzer diarizer, honouring the file's speaker
    counts in speakers.yaml; one voice print per speaker (for ``voices``); RTTM export per file."""
    exports: dict[str, dict] = {}
    hints = storage.speaker_names()
    diarizer = speech.new_diarizer()
    with gpu.tenant(context, "diarizer"):
        try:
            diarizer.load()

            def one(key: str) -> Diarization:
                info = audio[key]
                result = diarizer.diarize(load_samples(info), info.sample_rate, key=key, hints=hints.hints_for(key))
                exports[key] = export_diarization(result, storage.layout.file_dir(key))
                return result

            results = per_file(context, audio, one, what="Diarizing")
        finally:
            diarizer.close()

    report(
        context,
        results,
        common={"backend": speech.diarizer},
        one=lambda key, d: {
            "speakers": len(d.speakers),
            "turns": len(d.turns),
            "voice_prints": len(d.voices),
            "talk_time": talk_time_table(d.talk_time()),
            "hints": MetadataValue.json(d.hints.model_dump(exclude_none=True)),
            "exports": links(exports[key]),
        },
        row=lambda key, d: {"speakers": len(d.speakers), "turns": len(d.turns), "voice_prints": len(d.voices)},
    )
    return results


@per_file_asset(
    group="speech", code_version="speaker-transcript-3", deps=[AssetKey("voices"), AssetKey("speaker_names")]
)
def speaker_transcript(
    context: AssetExecutionContext,
    transcript: dict[str, Transcript],
    diarization: dict[str, Diarization],
    storage: StorageResource,
) -> dict[str, SpeakerTranscript]:
    """Each word gets the speaker whose turn overlaps it most, a word or two inside another
    speaker's turn without evidence of overlapped speech is given back to that speaker, and
    consecutive words form utterances. Names the words suggest for the speakers ("I'm Ana",
    "over to you, Ben") are kept with their evidence, never applied. Each local speaker's name
    shown: speakers.yaml, else its library-wide voice ID (``voices``)."""
    exports: dict[str, dict] = {}
    registry, names = storage.layout.read_voice_registry(), storage.speaker_names()

    def one(key: str) -> SpeakerTranscript:
        result = assign_speakers(transcript[key], diarization[key])
        result.name_suggestions = suggest_names(result)
        labels = sorted(set(diarization[key].speakers) | set(result.speakers))
        result = result.model_copy(update={"names": display_names(key, labels, registry, names)})
        exports[key] = export_speaker_transcript(result, storage.layout.file_dir(key), diarization[key])
        return result

    results = per_file(context, transcript, one, what="Aligning speakers")

    report(
        context,
        results,
        one=lambda key, st: {
            "speakers": len(st.speakers),
            "utterances": len(st.utterances),
            "smoothed_words": st.smoothed_words,
            "name_suggestions": name_suggestions_table(st.name_suggestions),
            "talk_time": talk_time_table({st.names.get(s, s): t for s, t in st.talk_time().items()}),
            "names": MetadataValue.json(st.names),
            "excerpt": utterance_excerpt(with_names(st, st.names).utterances),
            "exports": links(exports[key]),
        },
        row=lambda key, st: {
            "speakers": len(st.speakers),
            "utterances": len(st.utterances),
            "smoothed words": st.smoothed_words,
            "suggested names": ", ".join(sorted({f"{s.speaker}: {s.name}" for s in st.name_suggestions})) or "-",
        },
    )
    return results
