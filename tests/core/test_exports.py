import html
import re
from datetime import timedelta

import pytest
import srt
import webvtt
from pyannote.database.util import load_rttm

from autorag_dagster.core.exports import (
    Cue,
    export_diarization,
    export_speaker_transcript,
    export_transcript,
    timestamp,
    to_rttm,
    to_srt,
    to_vtt,
)
from autorag_dagster.core.types import (
    Diarization,
    Segment,
    SpeakerTranscript,
    SpeakerTurn,
    SpeakerWord,
    Transcript,
    Utterance,
    Word,
)

CUES = [
    Cue(0.0, 1.25, "Hello there."),
    Cue(61.5, 3725.004, "Line one\n\nline two --> three"),
    Cue(3725.5, 3726.0, "Fish & <chips>"),
    Cue(3727.0, 3728.0, "   "),  # nothing to show: dropped
]


@pytest.mark.parametrize(
    ("seconds", "vtt", "srt_text"),
    [
        (0, "00:00:00.000", "00:00:00,000"),
        (1.2345, "00:00:01.234", "00:00:01,234"),
        (59.9996, "00:01:00.000", "00:01:00,000"),
        (3661.5, "01:01:01.500", "01:01:01,500"),
        (-0.2, "00:00:00.000", "00:00:00,000"),
        (360000.0, "100:00:00.000", "100:00:00,000"),
    ],
)
def test_timestamps(seconds, vtt, srt_text):
    assert timestamp(seconds) == vtt
    assert timestamp(seconds, ",") == srt_text


def test_srt_parses_back_with_numbering_and_times():
    text = to_srt(CUES)
    subtitles = list(srt.parse(text))
    assert [s.index for s in subtitles] == [1, 2, 3]
    assert [s.start for s in subtitles] == [timedelta(0), timedelta(seconds=61.5), timedelta(seconds=3725.5)]
    assert subtitles[1].end == timedelta(seconds=3725, milliseconds=4)
    assert subtitles[1].content == "Line one line two -> three"
    assert subtitles[2].content == "Fish & <chips>"
    assert re.search(r"^00:01:01,500 --> 01:02:05,004$", text, re.M)


def test_vtt_parses_back_with_header_escaping_and_voices():
    text = to_vtt(CUES)
    assert text.startswith("WEBVTT\n\n")
    captions = webvtt.from_string(text).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:01.250"),
        ("00:01:01.500", "01:02:05.004"),
        ("01:02:05.500", "01:02:06.000"),
    ]
    assert html.unescape(captions[2].text) == "Fish & <chips>"
    assert "&amp;" in text and "<chips>" not in text

    voiced = webvtt.from_string(to_vtt([Cue(1.0, 2.0, "Hi <there>", "SPEAKER_01")])).captions[0]
    assert voiced.voice == "SPEAKER_01" and html.unescape(voiced.text) == "Hi <there>"


def test_srt_prefixes_speakers():
    subtitle = next(srt.parse(to_srt([Cue(1.0, 2.0, "Hi", "SPEAKER_00")])))
    assert subtitle.content == "SPEAKER_00: Hi"


def test_rttm_parses_back_into_the_same_turns(tmp_path):
    turns = [
        SpeakerTurn(start=3.0, end=4.5, speaker="SPEAKER_01"),
        SpeakerTurn(start=0.25, end=2.0, speaker="SPEAKER_00"),
    ]
    diarization = Diarization(key="team calls/monday call.wav", backend="resemblyzer", duration_s=5.0, turns=turns)
    text = to_rttm(diarization)
    assert all(len(line.split()) == 10 and line.startswith("SPEAKER ") for line in text.splitlines())
    path = tmp_path / "x.rttm"
    path.write_text(text)
    [(uri, annotation)] = load_rttm(path).items()
    assert uri == "team_calls/monday_call.wav"
    assert [(round(s.start, 3), round(s.end, 3), label) for s, _, label in annotation.itertracks(yield_label=True)] == [
        (0.25, 2.0, "SPEAKER_00"),
        (3.0, 4.5, "SPEAKER_01"),
    ]


def test_exports_write_every_format_into_the_folder(tmp_path):
    words = [Word(start=0.5, end=0.9, text="Hello"), Word(start=1.0, end=1.4, text="world.")]
    transcript = Transcript(
        key="a.wav",
        language="en",
        duration_s=2.0,
        model="tiny.en",
        device="cpu",
        segments=[Segment(id=0, start=0.5, end=1.4, text="Hello world.", words=words)],
    )
    diarization = Diarization(
        key="a.wav",
        backend="resemblyzer",
        duration_s=2.0,
        turns=[SpeakerTurn(start=0.4, end=1.5, speaker="SPEAKER_00")],
    )
    spoken = SpeakerTranscript(
        key="a.wav",
        duration_s=2.0,
        language="en",
        utterances=[
            Utterance(
                speaker="SPEAKER_00",
                start=0.5,
                end=1.4,
                text="Hello world.",
                words=[SpeakerWord(**w.model_dump(), speaker="SPEAKER_00") for w in words],
            )
        ],
    )
    folder = tmp_path / "exports" / "a-wav"

    paths = {
        **{f"transcript.{k}": p for k, p in export_transcript(transcript, folder).items()},
        **{f"diarization.{k}": p for k, p in export_diarization(diarization, folder).items()},
        **{f"speaker_transcript.{k}": p for k, p in export_speaker_transcript(spoken, folder).items()},
    }

    assert {p.name for p in paths.values()} == set(paths) == {p.name for p in folder.iterdir()}
    assert Transcript.model_validate_json(paths["transcript.json"].read_text()) == transcript
    assert Diarization.model_validate_json(paths["diarization.json"].read_text()) == diarization
    assert SpeakerTranscript.model_validate_json(paths["speaker_transcript.json"].read_text()) == spoken
    assert next(srt.parse(paths["transcript.srt"].read_text())).content == "Hello world."
    assert webvtt.read(str(paths["speaker_transcript.vtt"])).captions[0].voice == "SPEAKER_00"
    assert paths["diarization.rttm"].read_text().split()[3:5] == ["0.400", "1.100"]
