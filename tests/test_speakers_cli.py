"""`autorag speakers list` and `autorag speakers name` over a stored registry and speakers.yaml."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.core.speakers import read_speakers
from autorag_dagster.core.types import NameSuggestion, SpeakerTranscript
from autorag_dagster.core.voices import Identity, VoiceMember, VoiceRegistry
from autorag_dagster.layout import DataLayout
from autorag_dagster.settings import get_settings


@pytest.fixture
def autorag(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AUTORAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTORAG_AUDIO_DIR", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    layout = DataLayout(tmp_path / "data")
    layout.write_voice_registry(
        VoiceRegistry(
            next_number=3,
            identities=[
                Identity(
                    id="VOICE_0001",
                    centroid=[1.0],
                    members=[
                        VoiceMember(file="a.wav", speaker="SPEAKER_00", talk_s=61),
                        VoiceMember(file="b.wav", speaker="SPEAKER_01", talk_s=5),
                    ],
                ),
                Identity(
                    id="VOICE_0002", centroid=[0.0], members=[VoiceMember(file="a.wav", speaker="SPEAKER_01", talk_s=9)]
                ),
            ],
        )
    )
    # b.wav's words suggest a name for its SPEAKER_01 (VOICE_0001 there).
    layout.write_stored(
        "speaker_transcript",
        "b.wav",
        SpeakerTranscript(
            key="b.wav",
            duration_s=10,
            language="en",
            utterances=[],
            name_suggestions=[
                NameSuggestion(speaker="SPEAKER_01", name="Ana", time=3.5, words="I'm Ana", kind="introduction")
            ],
        ),
    )
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "speakers.yaml").write_text('"b.wav": {SPEAKER_01: Dr. Lee, num_speakers: 2}\n')
    layout.audio_folder_note.write_text(str(audio) + "\n")  # what `autorag run audio` leaves

    def run(*args: str):
        return CliRunner().invoke(app, list(args))

    yield run, audio
    get_settings.cache_clear()


def test_list_and_name(autorag):
    run, audio = autorag
    listed = run("speakers", "list")
    assert listed.exit_code == 0, listed.output
    assert "VOICE_0001" in listed.output and "VOICE_0002" in listed.output and "1:06" in listed.output
    assert "Dr. Lee" in listed.output  # what b.wav shows for its speaker
    assert "I'm Ana" in listed.output and "0:03" in listed.output  # a suggestion, with its evidence

    named = run("speakers", "name", "VOICE_0001", "Ana", "--no-apply")
    assert named.exit_code == 0, named.output
    names = read_speakers(audio / "speakers.yaml")
    assert names.identities == {"VOICE_0001": "Ana"}
    assert names.files["b.wav"].names == {"SPEAKER_01": "Dr. Lee"} and names.hints_for("b.wav").num_speakers == 2

    rows = json.loads(run("speakers", "list", "--json").output)
    assert rows[0]["identity"] == "VOICE_0001" and rows[0]["name"] == "Ana"
    assert ["a.wav", "SPEAKER_00", "Ana"] in rows[0]["files"] and ["b.wav", "SPEAKER_01", "Dr. Lee"] in rows[0]["files"]
    assert rows[0]["suggestions"] == [["Ana", "b.wav", 3.5, "I'm Ana"]] and rows[1]["suggestions"] == []

    unknown = run("speakers", "name", "VOICE_0042", "Zed", "--no-apply")
    assert unknown.exit_code == 1 and "No identity VOICE_0042" in unknown.output


def test_list_before_any_run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTORAG_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["speakers", "list"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "No voices yet" in result.output
