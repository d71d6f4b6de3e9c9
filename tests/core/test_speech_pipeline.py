"""Decode -> transcribe -> diarize -> assign speakers -> export, on the espeak-ng conversations."""

from collections import Counter

import srt

from autorag_dagster.core.align import assign_speakers
from autorag_dagster.core.audio import load_samples, prepare_audio
from autorag_dagster.core.exports import export_diarization, export_speaker_transcript, export_transcript
from autorag_dagster.core.keys import folder_name_for_key
from autorag_dagster.core.name_suggestions import suggest_names


def reference_speaker(turns, t: float) -> str:
    return min(turns, key=lambda turn: 0 if turn[0] <= t <= turn[1] else min(abs(t - turn[0]), abs(t - turn[1])))[2]


def majority_label(spoken, turns, voice: str) -> str:
    """The speaker label most of ``voice``'s words got."""
    labels = [w.speaker for u in spoken.utterances for w in u.words if reference_speaker(turns, w.start) == voice]
    return Counter(labels).most_common(1)[0][0]


def test_words_get_the_right_speakers_and_export(processed, tmp_path):
    spoken = assign_speakers(processed.transcription.transcript, processed.diarization)
    turns = processed.conversation.turns

    assert len(spoken.speakers) == len(processed.conversation.speakers)
    pairs = [(w.speaker, reference_speaker(turns, (w.start + w.end) / 2)) for u in spoken.utterances for w in u.words]
    mapping = {hyp: Counter(ref for h, ref in pairs if h == hyp).most_common(1)[0][0] for hyp in spoken.speakers}
    assert sorted(mapping.values()) == sorted(processed.conversation.speakers), "two labels for one voice"
    accuracy = sum(mapping[hyp] == ref for hyp, ref in pairs) / len(pairs)
    assert accuracy >= 0.9
    # every scripted turn is one utterance (give or take a word at a boundary)
    assert abs(len(spoken.utterances) - len(turns)) <= 1

    folder = tmp_path / folder_name_for_key(processed.info.key)
    written = [
        *export_transcript(processed.transcription.transcript, folder).values(),
        *export_diarization(processed.diarization, folder).values(),
        *export_speaker_transcript(spoken, folder).values(),
    ]
    assert all(p.parent == folder and p.stat().st_size > 0 for p in written)
    cues = list(srt.parse((folder / "speaker_transcript.srt").read_text()))
    assert len(cues) == len(spoken.utterances)
    assert all(c.content.startswith("SPEAKER_") for c in cues)
    # no one says a name in these conversations
    assert suggest_names(spoken) == []


def test_a_spoken_introduction_suggests_the_name_for_its_speaker(introduction, tmp_path, transcriber, offline_diarizer):
    conversation = introduction
    info = prepare_audio(conversation.path, "introduction.wav", tmp_path / "pcm")
    samples = load_samples(info)
    spoken = assign_speakers(
        transcriber.transcribe(samples, info.key).transcript,
        offline_diarizer.diarize(samples, info.sample_rate, info.key),
    )
    suggestions = suggest_names(spoken)

    anna = majority_label(spoken, conversation.turns, "alice")
    assert anna != majority_label(spoken, conversation.turns, "bob")
    assert [(s.speaker, s.name, s.kind) for s in suggestions] == [(anna, "Anna", "introduction")]
    said = suggestions[0]
    start, end, _ = conversation.turns[0]
    assert start <= said.time <= end
    assert "I'm Anna" in said.words
