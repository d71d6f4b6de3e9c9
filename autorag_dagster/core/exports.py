"""Files a person opens in a player or another tool: JSON, SRT, WebVTT, RTTM."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from autorag_dagster.core.atomic import write_text
from autorag_dagster.core.types import Diarization, SpeakerTranscript, Transcript


class Cue(NamedTuple):
    start: float
    end: float
    text: str
    speaker: str | None = None


def timestamp(seconds: float, decimal: str = ".") -> str:
    """HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SRT, with decimal=",")."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue and '-->' marks a timing line: neither may appear in cue text.
    return re.sub(r"\s+", " ", text).replace("-->", "->").strip()


def to_srt(cues: Iterable[Cue]) -> str:
    blocks = []
    for cue in cues:
        text = _one_line(cue.text)
        if not text:
            continue
        if cue.speaker:
            text = f"{cue.speaker}: {text}"
        blocks.append(f"{len(blocks) + 1}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(cues: Iterable[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = html.escape(_one_line(cue.text), quote=False)
        if not text:
            continue
        if cue.speaker:
            text = f"<v {html.escape(cue.speaker, quote=False)}>{text}</v>"
        blocks.append(f"{timestamp(cue.start)} --> {timestamp(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def rttm_name(name: str) -> str:
    """A speaker name as one RTTM field (RTTM fields are separated by whitespace)."""
    return re.sub(r"\s+", "_", name.strip()) or "<NA>"


def to_rttm(diarization: Diarization, names: Mapping[str, str] | None = None) -> str:
    """RTTM of the turns; with ``names``, each speaker under its name (spaces become underscores)."""
    uri = re.sub(r"\s+", "_", diarization.key) or "audio"
    names = names or {}
    return "".join(
        f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> "
        f"{rttm_name(names.get(t.speaker, t.speaker))} <NA> <NA>\n"
        for t in sorted(diarization.turns, key=lambda t: (t.start, t.end))
    )


def transcript_cues(transcript: Transcript) -> list[Cue]:
    return [Cue(s.start, s.end, s.text) for s in transcript.segments]


def utterance_cues(speaker_transcript: SpeakerTranscript) -> list[Cue]:
    """One cue per utterance, under the speaker's name (``names``) where it has one."""
    names = speaker_transcript.names
    return [Cue(u.start, u.end, u.text, names.get(u.speaker, u.speaker)) for u in speaker_transcript.utterances]


def export_transcript(transcript: Transcript, folder: Path | str) -> dict[str, Path]:
    folder, cues = Path(folder), transcript_cues(transcript)
    return {
        "json": write_text(folder / "transcript.json", transcript.model_dump_json(indent=2)),
        "srt": write_text(folder / "transcript.srt", to_srt(cues)),
        "vtt": write_text(folder / "transcript.vtt", to_vtt(cues)),
    }


def export_diarization(diarization: Diarization, folder: Path | str) -> dict[str, Path]:
    folder = Path(folder)
    return {
        "json": write_text(folder / "diarization.json", diarization.model_dump_json(indent=2)),
        "rttm": write_text(folder / "diarization.rttm", to_rttm(diarization)),
    }


def export_speaker_transcript(
    speaker_transcript: SpeakerTranscript, folder: Path | str, diarization: Diarization | None = None
) -> dict[str, Path]:
    """JSON, SRT and WebVTT (voice tags) under the speakers' names; with ``diarization``, also its
    RTTM under those names (``speakers.rttm``; ``diarization.rttm`` keeps the diarizer's labels)."""
    folder, cues = Path(folder), utterance_cues(speaker_transcript)
    written = {
        "json": write_text(folder / "speaker_transcript.json", speaker_transcript.model_dump_json(indent=2)),
        "srt": write_text(folder / "speaker_transcript.srt", to_srt(cues)),
        "vtt": write_text(folder / "speaker_transcript.vtt", to_vtt(cues)),
    }
    if diarization is not None:
        written["rttm"] = write_text(folder / "speakers.rttm", to_rttm(diarization, speaker_transcript.names))
    return written
