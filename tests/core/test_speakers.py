"""speakers.yaml, the one rule from a label to a name, and names where labels appear."""

from __future__ import annotations

import pytest

from autorag_dagster.core.exports import to_rttm, to_vtt, utterance_cues
from autorag_dagster.core.speakers import (
    SpeakersFileError,
    display_name,
    display_names,
    plan_renames,
    read_speakers,
    set_identity_name,
    user_names,
    with_names,
)
from autorag_dagster.core.topics.buckets import build_view, render_lines, speaker_labels
from autorag_dagster.core.types import (
    Diarization,
    SpeakerHints,
    SpeakerTranscript,
    SpeakerTurn,
    SpeakerWord,
    Utterance,
)
from autorag_dagster.core.voices import Identity, VoiceMember, VoiceRegistry

REGISTRY = VoiceRegistry(
    identities=[
        Identity(id="VOICE_0001", centroid=[1.0], members=[VoiceMember(file="a.wav", speaker="SPEAKER_00", talk_s=9)]),
        Identity(
            id="VOICE_0003",
            centroid=[1.0],
            members=[
                VoiceMember(file="a.wav", speaker="SPEAKER_01", talk_s=5),
                VoiceMember(file="interview.mp3", speaker="SPEAKER_01", talk_s=7),
            ],
        ),
    ]
)


def write(tmp_path, text: str):
    path = tmp_path / "speakers.yaml"
    path.write_text(text)
    return path


def test_the_names_file(tmp_path):
    path = write(
        tmp_path,
        '# notes\nVOICE_0003: Ana\n"interview.mp3":\n  SPEAKER_01: Dr. Lee\n  num_speakers: 2\n'
        "b.wav: {min_speakers: 2, max_speakers: 3}\n",
    )
    names = read_speakers(path)
    assert names.identities == {"VOICE_0003": "Ana"}
    assert names.files["interview.mp3"].names == {"SPEAKER_01": "Dr. Lee"}
    assert names.hints_for("interview.mp3") == SpeakerHints(num_speakers=2)
    assert names.hints_for("b.wav").bounds(1, 6) == (2, 3)
    assert names.hints_for("missing.wav").is_empty()
    assert read_speakers(tmp_path / "none.yaml").identities == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a list\n", "expected a mapping"),
        ("VOICE_0001: [a, b]\n", "needs a name"),
        ("a.wav: 3\n", "neither an identity"),
        ("a.wav: {num_speakers: 0}\n", "hints of 'a.wav' are invalid"),
        ("a.wav: {SPEAKER_00: {x: 1}}\n", "needs a name"),
        ("VOICE_0001: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_names_file_says_what_is_wrong(tmp_path, text, message):
    with pytest.raises(SpeakersFileError, match=message):
        read_speakers(write(tmp_path, text))


def test_naming_an_identity_keeps_the_rest(tmp_path):
    path = write(tmp_path, '"interview.mp3":\n  SPEAKER_01: Dr. Lee\n  num_speakers: 2\nVOICE_0009: Zoe\n')
    set_identity_name(path, "VOICE_0003", "Ana")
    names = read_speakers(path)
    assert names.identities == {"VOICE_0003": "Ana", "VOICE_0009": "Zoe"}
    assert names.files["interview.mp3"].names == {"SPEAKER_01": "Dr. Lee"}
    assert names.hints_for("interview.mp3").num_speakers == 2
    set_identity_name(path, "VOICE_0003", None)
    assert read_speakers(path).identities == {"VOICE_0009": "Zoe"}
    set_identity_name(tmp_path / "new.yaml", "VOICE_0001", "Ben")
    assert read_speakers(tmp_path / "new.yaml").identities == {"VOICE_0001": "Ben"}
    with pytest.raises(SpeakersFileError, match="not an identity"):
        set_identity_name(path, "SPEAKER_01", "Ana")


def test_display_name_precedence(tmp_path):
    names = read_speakers(write(tmp_path, 'VOICE_0003: Ana\n"interview.mp3": {SPEAKER_01: Dr. Lee}\n'))
    assert display_name("interview.mp3", "SPEAKER_01", REGISTRY, names) == "Dr. Lee"  # the file's own name
    assert display_name("a.wav", "SPEAKER_01", REGISTRY, names) == "Ana"  # the identity's name
    assert display_name("a.wav", "SPEAKER_00", REGISTRY, names) == "VOICE_0001"  # the identity
    assert display_name("a.wav", "SPEAKER_02", REGISTRY, names) == "SPEAKER_02"  # nothing known
    assert display_name("a.wav", "SPEAKER_01", None, names) == "SPEAKER_01"
    assert user_names("a.wav", ["SPEAKER_00", "SPEAKER_01"], REGISTRY, names) == {"SPEAKER_01": "Ana"}


def transcript(key: str = "a.wav") -> SpeakerTranscript:
    def utterance(speaker, start, text):
        words = [
            SpeakerWord(start=start + i, end=start + i + 1, text=w, speaker=speaker) for i, w in enumerate(text.split())
        ]
        return Utterance(speaker=speaker, start=start, end=start + len(words), text=text, words=words)

    return SpeakerTranscript(
        key=key,
        duration_s=20,
        language="en",
        utterances=[utterance("SPEAKER_00", 0, "hello there"), utterance("SPEAKER_01", 3, "good morning all")],
    )


def test_names_flow_into_exports_prompts_and_rows(tmp_path):
    names = read_speakers(write(tmp_path, "VOICE_0003: Ana Lima\n"))
    st = transcript()
    st = st.model_copy(update={"names": display_names("a.wav", st.speakers, REGISTRY, names)})
    assert st.names == {"SPEAKER_00": "VOICE_0001", "SPEAKER_01": "Ana Lima"}
    assert [c.speaker for c in utterance_cues(st)] == ["VOICE_0001", "Ana Lima"]
    assert "<v Ana Lima>good morning all</v>" in to_vtt(utterance_cues(st))
    diarization = Diarization(
        key="a.wav",
        backend="resemblyzer",
        duration_s=20,
        turns=[SpeakerTurn(start=0, end=2, speaker="SPEAKER_00"), SpeakerTurn(start=3, end=6, speaker="SPEAKER_01")],
    )
    rttm = to_rttm(diarization, st.names)
    assert " Ana_Lima " in rttm and " VOICE_0001 " in rttm and len(rttm.split("\n")[0].split()) == 10
    named = with_names(st, st.names)
    assert named.speakers == ["Ana Lima", "VOICE_0001"]
    assert {w.speaker for u in named.utterances for w in u.words} == {"Ana Lima", "VOICE_0001"}
    # The topic prompts are told the names a person gave, never a voice ID.
    assert speaker_labels(st) == {"SPEAKER_00": "Speaker 1", "SPEAKER_01": "Ana Lima"}
    assert speaker_labels(transcript()) == {"SPEAKER_00": "Speaker 1", "SPEAKER_01": "Speaker 2"}
    lines = render_lines(build_view(st).lines)
    assert "Ana Lima: good morning all" in lines and "Speaker 1: hello there" in lines
    assert "VOICE_0001" not in lines


def test_what_a_change_of_names_or_hints_rematerialises(tmp_path):
    st = transcript()
    st = st.model_copy(update={"names": display_names("a.wav", st.speakers, REGISTRY, read_speakers(tmp_path / "x"))})
    diarization = Diarization(key="a.wav", backend="resemblyzer", duration_s=20, turns=[])
    nothing = plan_renames({"a.wav": st}, {"a.wav": diarization}, REGISTRY, read_speakers(tmp_path / "x"))
    assert nothing.files == []
    renamed = read_speakers(write(tmp_path, "VOICE_0003: Ana\n"))
    plan = plan_renames({"a.wav": st}, {"a.wav": diarization}, REGISTRY, renamed)
    assert plan.names == {"a.wav": {"SPEAKER_00": "VOICE_0001", "SPEAKER_01": "Ana"}} and plan.hints == {}
    unrelated = read_speakers(write(tmp_path, "VOICE_0777: Zed\n"))
    assert plan_renames({"a.wav": st}, {"a.wav": diarization}, REGISTRY, unrelated).files == []
    hinted = read_speakers(write(tmp_path, "a.wav: {num_speakers: 3}\n"))
    assert plan_renames({"a.wav": st}, {"a.wav": diarization}, REGISTRY, hinted).hints == {"a.wav": {"num_speakers": 3}}
