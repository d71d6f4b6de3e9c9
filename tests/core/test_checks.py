"""The quality checks behind the asset checks: each fails when its condition is broken."""

from __future__ import annotations

import html

import numpy as np
import pytest

from autorag_dagster.core import checks
from autorag_dagster.core.store import PartitionSummary
from autorag_dagster.core.types import (
    Diarization,
    Segment,
    SpeakerTranscript,
    SpeakerTurn,
    SpeakerWord,
    TopicNode,
    TopicTree,
    Transcript,
    Utterance,
    Word,
)
from autorag_dagster.core.viz import render_page


def transcript(words: list[tuple[float, float, str]]) -> Transcript:
    return Transcript(
        key="k",
        language="en",
        duration_s=10.0,
        model="tiny.en",
        device="cpu",
        segments=[
            Segment(
                id=0,
                start=0,
                end=10,
                text=" ".join(w for *_, w in words),
                words=[Word(start=s, end=e, text=w) for s, e, w in words],
            )
        ],
    )


def test_transcript_check():
    good = transcript([(0.5, 1.0, "hello"), (1.1, 1.5, "there")])
    assert checks.check_transcript(good, 10.0, speech_expected=True) == []
    assert "before the previous word" in " ".join(
        checks.check_transcript(transcript([(2.0, 2.5, "b"), (1.0, 1.5, "a")]), 10.0, True)
    )
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
    assert "no speaker" in " ".join(
        checks.check_diarization(Diarization(key="k", backend="x", duration_s=10, turns=[]), 10.0, True)
    )


def test_speaker_transcript_check():
    t = transcript([(0.5, 1.0, "hello"), (1.1, 1.5, "there")])
    words = [SpeakerWord(start=w.start, end=w.end, text=w.text, speaker="A") for w in t.words]
    good = SpeakerTranscript(
        key="k",
        duration_s=10,
        language="en",
        utterances=[Utterance(speaker="A", start=0.5, end=1.5, text="hello there", words=words)],
    )
    assert checks.check_speaker_transcript(good, t) == []
    lost = good.model_copy(update={"utterances": [good.utterances[0].model_copy(update={"words": words[:1]})]})
    assert "1 words attributed, 2 transcribed" in checks.check_speaker_transcript(lost, t)[0]


def summary(**overrides) -> PartitionSummary:
    base = dict(
        file_key="k", rows=5, unique_row_ids=5, chunks=3, topics=2, dim=384, nan_vectors=0, models=("all-minilm",)
    )
    return PartitionSummary(**{**base, **overrides})


def test_embeddings_check():
    assert checks.check_embeddings(summary(), expected_rows=5, model_dim=384) == []
    assert "duplicate" in checks.check_embeddings(summary(rows=6, unique_row_ids=5), 6, 384)[0]
    assert "5 rows stored, 7" in checks.check_embeddings(summary(), 7, 384)[0]
    assert "dimension 384 differs from the model's 768" in checks.check_embeddings(summary(), 5, 768)[0]
    assert "NaN" in checks.check_embeddings(summary(nan_vectors=1), 5, 384)[0]
    assert "mixed" in checks.check_embeddings(summary(models=("a", "b")), 5, 384)[0]


def test_viz_check():
    tree = TopicTree(
        key="k", duration_s=10, nodes=[TopicNode(id="1", level=1, start=0, end=10, title="Garden & trees", summary="s")]
    )
    st = SpeakerTranscript(
        key="k",
        duration_s=10,
        language="en",
        utterances=[Utterance(speaker="A", start=0, end=2, text="<script>alert(1)</script>")],
    )
    escaped = "<h2>Garden &amp; trees</h2><p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert checks.check_viz_page(escaped, tree, st) == []
    assert "not on the page" in checks.check_viz_page("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", tree, st)[0]
    assert "unescaped" in checks.check_viz_page("Garden &amp; trees <script>alert(1)</script>", tree, st)[0]


# Each character that HTML escapes, in titles and in transcript text.
PUNCTUATED_TITLES = [
    "Alice's garden plan",
    "Trees & water",
    "Less <than> more",
    'The "river" school',
    'It\'s <b>"A & B"</b>',
    "Rock &",
    "&amp; as written",
]
PUNCTUATED_TEXTS = [
    "We don't need more water.",
    "Salt & pepper, AT&T and &amp; too.",
    "<script>alert(1)</script>",
    'She said "forty trees".',
    "a < b > c",
    '<img src=x onerror="alert(2)"> & more',
    "Rock &",
]


def punctuated() -> tuple[TopicTree, SpeakerTranscript]:
    nodes = [
        TopicNode(id=str(i + 1), level=1, start=i, end=i + 1, title=title, summary=f"about {title}")
        for i, title in enumerate(PUNCTUATED_TITLES)
    ]
    nodes[0].children = [
        TopicNode(id="1.1", level=2, start=0, end=0.5, title="Bob's <i>child</i> & co"),
        TopicNode(id="1.2", level=2, start=0.5, end=1, title="\"Quoted\" 'both'"),
    ]
    tree = TopicTree(key="k", duration_s=7, title="Alice's & Bob's <talk>", summary='A "summary" & more', nodes=nodes)
    utterances = [
        Utterance(speaker="A" if i % 2 else "B", start=i, end=i + 0.9, text=text)
        for i, text in enumerate(PUNCTUATED_TEXTS)
    ]
    return tree, SpeakerTranscript(key="k", duration_s=7, language="en", utterances=utterances)


def test_viz_check_passes_the_rendered_page_whatever_the_punctuation():
    tree, st = punctuated()
    page = render_page(st, tree)
    assert "&#39;" in page and "&amp;" in page and "&lt;script&gt;" in page and "&#34;" in page  # escaped on the page
    assert checks.check_viz_page(page, tree, st) == []


@pytest.mark.parametrize("index", range(len(PUNCTUATED_TITLES)))
def test_viz_check_finds_each_missing_title(index):
    tree, st = punctuated()
    page = render_page(st, tree)
    renamed = tree.model_copy(deep=True)
    renamed.nodes[index].title = PUNCTUATED_TITLES[index] + " (not shown)"
    assert checks.check_viz_page(page, renamed, st) == [
        f"topic {index + 1} {renamed.nodes[index].title!r} is not on the page"
    ]


@pytest.mark.parametrize("index", [1, 2, 4, 5])  # each text holding '&' or '<'
def test_viz_check_reports_transcript_text_written_raw(index):
    tree, st = punctuated()
    page = render_page(st, tree)
    text = PUNCTUATED_TEXTS[index]
    escaped = html.escape(text)  # markupsafe's form: ' and " as numeric references
    escaped_page = page.replace(escaped.replace("&#x27;", "&#39;").replace("&quot;", "&#34;"), text)
    assert escaped_page != page
    problems = checks.check_viz_page(escaped_page, tree, st)
    assert problems == [f"transcript text at {float(index):.1f} s appears unescaped"], problems


def test_viz_check_reports_a_title_broken_by_live_markup():
    tree, st = punctuated()
    page = render_page(st, tree)
    broken = page.replace("It&#39;s &lt;b&gt;", "It&#39;s <b>")  # a browser shows a bold element, not the title
    assert broken != page
    assert checks.check_viz_page(broken, tree, st) == [f"topic 5 {PUNCTUATED_TITLES[4]!r} is not on the page"]
    written_raw = page.replace("Rock &amp;<", "Rock &<")  # a bare '&' reads the same, but is not escaped
    assert written_raw != page
    assert checks.check_viz_page(written_raw, tree, st) == [  # the last utterance reads "Rock &" too
        f"topic 6 {PUNCTUATED_TITLES[5]!r} appears unescaped",
        "transcript text at 6.0 s appears unescaped",
    ]


def test_viz_check_ignores_script_and_style_contents():
    tree = TopicTree(key="k", duration_s=1, nodes=[TopicNode(id="1", level=1, start=0, end=1, title="Trees & water")])
    st = SpeakerTranscript(key="k", duration_s=1, language="en", utterances=[])
    assert checks.check_viz_page("<script>Trees &amp; water</script><style>Trees &amp; water</style>", tree, st) == [
        "topic 1 'Trees & water' is not on the page"
    ]
    assert checks.check_viz_page("<p>Trees &amp; water</p>", tree, st) == []
