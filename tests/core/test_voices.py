"""Library-wide voices: identities across files, stable IDs, short voices that cannot merge, names
the voices say suggested for the right identity."""

from __future__ import annotations

import numpy as np
import pytest

from autorag_dagster.core.align import assign_speakers
from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.name_suggestions import suggest_names
from autorag_dagster.core.speakers import SpeakerNames, speaker_rows
from autorag_dagster.core.types import Diarization, SpeakerTurn, SpeakerVoice
from autorag_dagster.core.voices import (
    VoiceSample,
    VoicesConfig,
    b_cubed,
    changed_files,
    cluster_voices,
    collect_voices,
)
from tests.support.voices_library import LIBRARY_SCRIPTS, introductions, suggested_names, true_voices, write_library


@pytest.fixture(scope="module")
def library(tmp_path_factory, offline_diarizer):
    """The generated library, each file decoded and diarized once."""
    folder = tmp_path_factory.mktemp("library")
    conversations = write_library(folder)
    diarizations = {}
    for key, conversation in conversations.items():
        info = prepare_audio(conversation.path, key, folder / "pcm" / key)
        diarizations[key] = offline_diarizer.diarize(load_samples(info), info.sample_rate, key)
    return conversations, diarizations


def test_each_introduction_suggests_its_name_for_the_voice_that_says_it(library, transcriber):
    conversations, diarizations = library
    transcripts = {}
    for key, conversation in conversations.items():
        info = prepare_audio(conversation.path, key, conversation.path.parent / "pcm" / key)
        transcripts[key] = assign_speakers(
            transcriber.transcribe(load_samples(info), key).transcript, diarizations[key]
        )
        transcripts[key].name_suggestions = suggest_names(transcripts[key])
    truth = true_voices(diarizations, conversations)
    said = sorted(
        (key, name, voice, voice) for key, script in LIBRARY_SCRIPTS.items() for voice, name in introductions(script)
    )
    assert len(said) >= 2 and len({key for key, *_ in said}) < len(LIBRARY_SCRIPTS)  # and files where no one does

    # Each file: one suggestion per introduction, for the local speaker whose voice says it...
    for key, transcript in transcripts.items():
        expected = sorted((voice, name) for voice, name in introductions(LIBRARY_SCRIPTS[key]))
        got = sorted((truth.get((key, s.speaker)), s.name) for s in transcript.name_suggestions)
        assert got == expected, (key, transcript.name_suggestions)
        assert all(s.kind == "introduction" for s in transcript.name_suggestions)
    # ...and across the library, for that voice's identity (as `autorag speakers list` shows it).
    rows = speaker_rows(cluster_voices(collect_voices(diarizations.values())), SpeakerNames(), transcripts)
    assert sorted(suggested_names(rows, truth)) == said


def test_the_library_has_voices_that_come_back():
    files_of: dict[str, set[str]] = {}
    for name, script in LIBRARY_SCRIPTS.items():
        for speaker, _ in script:
            files_of.setdefault(speaker, set()).add(name)
    assert len(LIBRARY_SCRIPTS) >= 4 and len(files_of) >= 5
    assert sum(len(files) >= 2 for files in files_of.values()) >= 3
    from autorag_dagster.samples import ALL_VOICES

    assert {ALL_VOICES[s].engine for s in files_of} == {"espeak-ng", "flite"}


def test_identities_match_the_true_voices(library):
    conversations, diarizations = library
    assert all(d.voices and len(d.voices) == len(d.speakers) for d in diarizations.values())
    for d in diarizations.values():
        talk = d.talk_time()
        for voice in d.voices:
            assert voice.talk_s == pytest.approx(talk[voice.speaker], abs=0.01)
            assert np.linalg.norm(voice.embedding) == pytest.approx(1.0, abs=1e-3)
    registry = cluster_voices(collect_voices(diarizations.values()))
    truth = true_voices(diarizations, conversations)
    precision, recall, f1 = b_cubed(registry.assignments(), truth)
    assert f1 >= 0.8, (precision, recall, registry.files_of())
    assert [i.id for i in registry.identities][:2] == ["VOICE_0001", "VOICE_0002"]


def test_ids_stay_when_files_arrive(library):
    _, diarizations = library
    keys = sorted(diarizations)
    first = cluster_voices(collect_voices(diarizations[k] for k in keys[:2]))
    later = cluster_voices(collect_voices(diarizations.values()), first)
    for key in keys[:2]:
        assert later.files_of()[key] == first.files_of()[key]
    assert later.next_number > first.next_number
    assert changed_files(first, later) == sorted(keys[2:])
    again = cluster_voices(collect_voices(diarizations.values()), later)
    assert again.files_of() == later.files_of() and changed_files(later, again) == []


def _sample(file, speaker, talk, vector) -> VoiceSample:
    vector = np.asarray(vector, dtype=float)
    return VoiceSample(file, speaker, talk, vector / np.linalg.norm(vector))


def test_short_voices_cannot_merge_identities():
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    samples = [
        _sample("one.wav", "SPEAKER_00", 20, a),
        _sample("two.wav", "SPEAKER_00", 20, b),
        _sample("three.wav", "SPEAKER_00", 1.5, [1.0, 1.0, 0.0]),  # between a and b
        _sample("four.wav", "SPEAKER_00", 1.0, [0.9, 0.1, 0.0]),  # short, but clearly a
        _sample("five.wav", "SPEAKER_00", 2.0, [0.0, 0.0, 1.0]),  # two short voices, alike
        _sample("six.wav", "SPEAKER_00", 2.0, [0.0, 0.05, 1.0]),
    ]
    registry = cluster_voices(samples, config=VoicesConfig(voice_threshold=0.25, voice_min_talk_s=4))
    ids = {file: identity for (file, _), identity in registry.assignments().items()}
    assert ids["one.wav"] != ids["two.wav"]
    assert ids["three.wav"] not in {ids["one.wav"], ids["two.wav"]}  # its own identity
    assert ids["four.wav"] == ids["one.wav"]  # joined the identity it is close to...
    assert registry.get(ids["one.wav"]).centroid == pytest.approx(a, abs=1e-6)  # ...without moving it
    assert ids["five.wav"] != ids["six.wav"]  # short voices never form an identity together
    # As long voices, five and six are one identity.
    strong = cluster_voices(samples, config=VoicesConfig(voice_threshold=0.25, voice_min_talk_s=0))
    assert strong.identity_of("five.wav", "SPEAKER_00") == strong.identity_of("six.wav", "SPEAKER_00")


def test_two_speakers_of_one_file_are_never_one_identity():
    samples = [_sample("one.wav", "SPEAKER_00", 10, [1, 0]), _sample("one.wav", "SPEAKER_01", 10, [1, 0.01])]
    registry = cluster_voices(samples)
    assert len(registry.identities) == 2


def test_b_cubed():
    truth = {1: "a", 2: "a", 3: "b"}
    assert b_cubed({1: "x", 2: "x", 3: "y"}, truth) == (1.0, 1.0, 1.0)
    precision, recall, f1 = b_cubed({1: "x", 2: "x", 3: "x"}, truth)
    assert recall == 1.0 and precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert b_cubed({}, truth)[0] == 1.0 and b_cubed({}, truth)[1] < 1.0


def test_voice_prints_from_turns():
    from autorag_dagster.core.diarize.base import speaker_voices

    turns = [SpeakerTurn(start=0, end=2, speaker="SPEAKER_00"), SpeakerTurn(start=2, end=3, speaker="SPEAKER_01")]
    pieces = [(0, 1, np.array([1.0, 0.0])), (1, 2, np.array([0.0, 2.0])), (2, 3, np.array([0.0, 0.0, 1.0][:2]))]
    voices = speaker_voices(turns, pieces)
    assert [v.speaker for v in voices] == ["SPEAKER_00"]  # SPEAKER_01's only piece is all zeros...
    assert voices[0].talk_s == 2 and voices[0].embedding == pytest.approx([2**-0.5, 2**-0.5], abs=1e-5)


def test_old_diarizations_without_voice_prints_still_load():
    old = Diarization.model_validate({"key": "a.wav", "backend": "resemblyzer", "duration_s": 1.0, "turns": []})
    assert old.voices == [] and old.hints.is_empty()
    assert collect_voices([old]) == []
    assert SpeakerVoice(speaker="SPEAKER_00", talk_s=1, embedding=[1.0]).speaker == "SPEAKER_00"
