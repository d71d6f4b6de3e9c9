"""The quality checks behind the asset checks: each fails when its condition is broken."""

from __future__ import annotations

import numpy as np

from autorag_dagster.core import checks
from autorag_dagster.core.store import PartitionSummary
from autorag_dagster.core.types import (
    Diarization, Segment, SpeakerTranscript, SpeakerTurn, SpeakerWord, TopicNode, TopicTree, Transcript, Utterance, Word,
)


def transcript(words: list[tuple[float, float, str]]) -> Transcript:
    return Transcript(
        key="k", language="en", duration_s=10.0, model="tiny.en", device="cpu",
        segments=[Segment(id=0, start=0, end=10, text=" ".join(w for *_, w in words),
                          words=[Word(start=s, end=e, text=w) for s, e, w in words])],
    )


def test_transcript_check():
    good = transcript([(0.5, 1.0, "hello"), (1.1, 1.5, "there")])
    assert checks.check_transcript(good, 10.0, speech_expected=True) == []
    assert "before the previous word" in " ".join(
        checks.check_transcript(transcript([(2.0, 2.5, "b"), (1.0, 1.5, "a")]), 10.0, True))
    assert "outside" in " ".join(checks.check_transcript(transcript([(9.8, 11.0, "late")]), 10.0, True))
    assert "no words" in " ".join(checks.check_transcript(transcript([]), 10.0, speech_expected=True))
    assert checks.check_transcript(transcript([]), 10.0, speech_expected=False) == []


def test_speech_energy():
    assert not checks.has_speech_energy(np.zeros(16000, dtype=np.float32))
    assert checks.has_speech_energy(0.1 * np.sin(np.arange(16000) / 5).astype(np.float32))


def test_diarization_check():
    turns = [SpeakerTurn(start=0, end=4, speaker="SPEAKER_00"), SpeakerTurn(start=4, end=9, speaker="SPEAKER_01")]
    good = Diarization(key="k", backend="resemblyzer", duration_s=10, turns=turns)
    assert checks.check_diarization(good, 10.0, True) == []
    late = Diarization(key="k", backend="x", duration_s=10, turns=[SpeakerTurn(start=8, end=12, speaker="A")])
    assert "outside" in " ".join(checks.check_diarization(late, 10.0, True))
    assert "no speaker" in " ".join(checks.check_diarization(Diarization(key="k", backend="x", duration_s=10, turns=[]), 10.0, True))


def test_speaker_transcript_check():
    t = transcript([(0.5, 1.0, "hello"), (1.1, 1.5, "there")])
    words = [SpeakerWord(start=w.start, end=w.end, text=w.text, speaker="A") for w in t.words]
    good = SpeakerTranscript(key="k", duration_s=10, language="en",
                             utterances=[Utterance(speaker="A", start=0.5, end=1.5, text="hello there", words=words)])
    assert checks.check_speaker_transcript(good, t) == []
    lost = good.model_copy(update={"utterances": [good.utterances[0].model_copy(update={"words": words[:1]})]})
    assert "1 words attributed, 2 transcribed" in checks.check_speaker_transcript(lost, t)[0]


def summary(**overrides) -> PartitionSummary:
    base = dict(file_key="k", rows=5, unique_row_ids=5, chunks=3, topics=2, dim=384, nan_vectors=0, models=("all-minilm",))
    return PartitionSummary(**{**base, **overrides})


def test_embeddings_check():
    assert checks.check_embeddings(summary(), expected_rows=5, model_dim=384) == []
    assert "duplicate" in checks.check_embeddings(summary(rows=6, unique_row_ids=5), 6, 384)[0]
    assert "5 rows stored, 7" in checks.check_embeddings(summary(), 7, 384)[0]
    assert "dimension 384 differs from the model's 768" in checks.check_embeddings(summary(), 5, 768)[0]
    assert "NaN" in checks.check_embeddings(summary(nan_vectors=1), 5, 384)[0]
    assert "mixed" in checks.check_embeddings(summary(models=("a", "b")), 5, 384)[0]


def test_viz_check():
    tree = TopicTree(key="k", duration_s=10, nodes=[TopicNode(id="1", level=1, start=0, end=10, title="Garden & trees", summary="s")])
    st = SpeakerTranscript(key="k", duration_s=10, language="en",
                           utterances=[Utterance(speaker="A", start=0, end=2, text="<script>alert(1)</script>")])
    escaped = "<h2>Garden &amp; trees</h2><p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert checks.check_viz_page(escaped, tree, st) == []
    assert "not on the page" in checks.check_viz_page("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", tree, st)[0]
    assert "unescaped" in checks.check_viz_page("Garden &amp; trees <script>alert(1)</script>", tree, st)[0]
