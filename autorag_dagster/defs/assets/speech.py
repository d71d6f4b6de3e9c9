"""Speech assets: ``audio`` -> ``transcript`` + ``diarization`` -> ``speaker_transcript``.

Each step handles every partition of its run, loading its model once (see ``partitions``).
"""


from dagster import AssetExecutionContext, MetadataValue, asset

from autorag_dagster.core.align import assign_speakers
from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.exports import export_diarization, export_speaker_transcript, export_transcript
from autorag_dagster.core.keys import validate_key
from autorag_dagster.core.types import AudioInfo, Diarization, SpeakerTranscript, Transcript
from autorag_dagster.defs.assets.common import per_file
from autorag_dagster.defs.io import file_dir
from autorag_dagster.defs.metadata import excerpt, links, mmss, per_file_table, talk_time_table
from autorag_dagster.defs.partitions import audio_files, single_run
from autorag_dagster.defs.resources import GpuResource, OllamaResource, SpeechResource, StorageResource

COMMON = dict(
    partitions_def=audio_files,
    backfill_policy=single_run,
    io_manager_key="model_io",
    group_name="speech",
)


@asset(**COMMON, code_version="audio-1", kinds={"ffmpeg"})
def audio(context: AssetExecutionContext, storage: StorageResource) -> dict[str, AudioInfo]:
    """The file probed and decoded once to 16 kHz mono float32; duration, channels, sha256."""

    def one(key: str) -> AudioInfo:
        path = validate_key(storage.audio_dir, key)
        return prepare_audio(path, key, file_dir(storage.data_dir, key))

    infos = per_file(context, context.partition_keys, one, what="Decoding")
    if len(infos) == 1:
        info = next(iter(infos.values()))
        context.add_output_metadata(
            {
                "duration": mmss(info.duration_s),
                "duration_s": info.duration_s,
                "source": MetadataValue.path(info.path),
                "codec": info.codec or "?",
                "source_sample_rate": info.source_sample_rate,
                "source_channels": info.source_channels,
                "sha256": info.sha256,
            }
        )
    else:
        context.add_output_metadata(
            {"files": per_file_table([{"file": k, "duration": mmss(i.duration_s), "codec": i.codec} for k, i in infos.items()])}
        )
    return infos


@asset(**COMMON, code_version="transcript-1", pool="gpu", kinds={"whisper"})
def transcript(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speech: SpeechResource,
    storage: StorageResource,
    ollama: OllamaResource,
    gpu: GpuResource,
) -> dict[str, Transcript]:
    """faster-whisper with VAD and word timestamps; JSON, SRT and VTT exports per file."""
    tenancy = gpu.tenancy(ollama.get_client(), log=context.log.info)
    stats: dict[str, dict] = {}
    with tenancy.tenant("whisper"), speech.new_transcriber() as transcriber:

        def one(key: str):
            result = transcriber.transcribe(load_samples(audio[key]), key=key)
            exports = export_transcript(result.transcript, file_dir(storage.data_dir, key))
            stats[key] = {"rtf": result.realtime_factor, "exports": exports}
            return result.transcript

        transcripts = per_file(context, audio, one, what="Transcribing")
    for warning in transcriber.warnings:
        context.log.warning(warning)

    metadata: dict = {
        "model": transcriber.model,
        "device": transcriber.loaded_device or "?",
        "model_load_s": round(transcriber.load_s or 0.0, 2),
        "gpu_timeline": MetadataValue.md(tenancy.timeline_markdown()),
    }
    if len(transcripts) == 1:
        key, t = next(iter(transcripts.items()))
        metadata |= {
            "duration": mmss(t.duration_s),
            "language": t.language,
            "word_count": len(t.words),
            "realtime_factor": round(stats[key]["rtf"], 4),
            "excerpt": excerpt(t.text),
            "exports": links(stats[key]["exports"]),
        }
    else:
        metadata["files"] = per_file_table(
            [{"file": k, "language": t.language, "words": len(t.words), "rtf": f"{stats[k]['rtf']:.3f}"} for k, t in transcripts.items()]
        )
    context.add_output_metadata(metadata)
    return transcripts


@asset(**COMMON, code_version="diarization-1", pool="gpu", kinds={"pytorch"})
def diarization(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speech: SpeechResource,
    storage: StorageResource,
    ollama: OllamaResource,
    gpu: GpuResource,
) -> dict[str, Diarization]:
    """Who spoke when: pyannote.audio or the offline Resemblyzer diarizer; RTTM export per file."""
    tenancy = gpu.tenancy(ollama.get_client(), log=context.log.info)
    exports: dict[str, dict] = {}
    diarizer = speech.new_diarizer()
    with tenancy.tenant("diarizer"):
        try:
            diarizer.load()

            def one(key: str) -> Diarization:
                info = audio[key]
                result = diarizer.diarize(load_samples(info), info.sample_rate, key=key)
                exports[key] = export_diarization(result, file_dir(storage.data_dir, key))
                return result

            results = per_file(context, audio, one, what="Diarizing")
        finally:
            diarizer.close()

    metadata: dict = {"backend": speech.diarizer, "gpu_timeline": MetadataValue.md(tenancy.timeline_markdown())}
    if len(results) == 1:
        key, d = next(iter(results.items()))
        talk: dict[str, float] = {}
        for turn in d.turns:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
        metadata |= {"speakers": len(d.speakers), "turns": len(d.turns), "talk_time": talk_time_table(talk), "exports": links(exports[key])}
    else:
        metadata["files"] = per_file_table([{"file": k, "speakers": len(d.speakers), "turns": len(d.turns)} for k, d in results.items()])
    context.add_output_metadata(metadata)
    return results


@asset(**COMMON, code_version="speaker-transcript-1")
def speaker_transcript(
    context: AssetExecutionContext,
    transcript: dict[str, Transcript],
    diarization: dict[str, Diarization],
    storage: StorageResource,
) -> dict[str, SpeakerTranscript]:
    """Each word gets the speaker whose turn overlaps it most; consecutive words form utterances."""
    exports: dict[str, dict] = {}

    def one(key: str) -> SpeakerTranscript:
        result = assign_speakers(transcript[key], diarization[key])
        exports[key] = export_speaker_transcript(result, file_dir(storage.data_dir, key))
        return result

    results = per_file(context, transcript, one, what="Aligning speakers")
    if len(results) == 1:
        key, st = next(iter(results.items()))
        lines = [f"**{u.speaker}** [{mmss(u.start)}]: {excerpt(u.text, 160)}" for u in st.utterances[:8]]
        context.add_output_metadata(
            {
                "speakers": len(st.speakers),
                "utterances": len(st.utterances),
                "talk_time": talk_time_table(st.talk_time()),
                "excerpt": MetadataValue.md("\n\n".join(lines) or "(no speech)"),
                "exports": links(exports[key]),
            }
        )
    return results
