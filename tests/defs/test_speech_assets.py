"""The speech assets through real Dagster runs: real decoding, faster-whisper and diarizer."""

from __future__ import annotations

import json
import shutil

from dagster import DagsterEventType

from tests.support.dagster_runs import failure_text

SPEECH = ["audio", "transcript", "diarization", "speaker_transcript"]


def test_good_file_materialises_with_checks_and_bad_files_fail_alone(pipeline, two_speakers):
    shutil.copy(two_speakers.path, pipeline.audio_dir / "meeting one.wav")
    (pipeline.audio_dir / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x13" * 200)
    (pipeline.audio_dir / "empty.mp3").write_bytes(b"")
    (pipeline.audio_dir / "notes.wav").write_text("these are meeting notes, not audio")
    pipeline.add_files("meeting one.wav", "corrupt.wav", "empty.mp3", "notes.wav")

    # The LLM is resident before the run: the GPU tenancy must evict it before Whisper loads.
    import ollama

    ollama.Client(pipeline.server.url).chat(model="gemma4:latest", messages=[], keep_alive="5m")
    assert ollama.Client(pipeline.server.url).ps().models

    bad = {key: pipeline.run(key, SPEECH) for key in ("corrupt.wav", "empty.mp3", "notes.wav")}
    good = pipeline.run("meeting one.wav", SPEECH)
    assert good.success, failure_text(good)

    for key, result in bad.items():
        assert not result.success
        text = failure_text(result)
        assert key in text, text
        assert "Traceback" not in text.split("\n")[0]
    assert "empty" in failure_text(bad["empty.mp3"]).lower()

    checks = good.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "audio_is_decoded",
        "transcript_words_valid",
        "diarization_turns_valid",
        "speaker_words_attributed",
    }
    assert all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks if not c.passed]

    # Exports live in one folder per file; the LLM was gone before Whisper started.
    folders = list((pipeline.data_dir / "files").iterdir())
    assert len(folders) == 1
    names = {p.name for p in folders[0].iterdir()}
    assert {"transcript.srt", "transcript.vtt", "transcript.json", "diarization.rttm"} <= names
    assert not ollama.Client(pipeline.server.url).ps().models
    unloads = pipeline.server.events(kind="unload")
    assert unloads and unloads[0]["cause"] == "keep_alive_0"

    materialised = {
        e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
        for e in good.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    transcript_md = materialised["transcript"]
    assert transcript_md["language"].value == "en"
    assert transcript_md["word_count"].value > 20
    assert "whisper" in transcript_md["gpu_timeline"].value
    assert materialised["diarization"]["speakers"].value == 2
    speaker_md = materialised["speaker_transcript"]
    assert speaker_md["smoothed_words"].value >= 0
    assert speaker_md["name_suggestions"].value == "(none)"  # no one says a name in this meeting


def test_a_spoken_introduction_is_suggested_not_applied(pipeline, introduction):
    shutil.copy(introduction.path, pipeline.audio_dir / "intro.wav")
    pipeline.add_files("intro.wav")
    result = pipeline.run("intro.wav", SPEECH)
    assert result.success, failure_text(result)

    metadata = next(
        e.step_materialization_data.materialization.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION and e.asset_key.path[-1] == "speaker_transcript"
    )
    table = metadata["name_suggestions"].value
    assert "| Anna |" in table and "I'm Anna" in table

    [stored] = (pipeline.data_dir / "files").glob("*/speaker_transcript.json")
    saved = json.loads(stored.read_text())
    [suggestion] = saved["name_suggestions"]
    assert (suggestion["name"], suggestion["kind"]) == ("Anna", "introduction")
    # a suggestion only: the labels stay the diarizer's
    assert suggestion["speaker"].startswith("SPEAKER_")
    assert all(u["speaker"].startswith("SPEAKER_") for u in saved["utterances"])
