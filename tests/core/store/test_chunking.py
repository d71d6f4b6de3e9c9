from __future__ import annotations

import pytest

from autorag_dagster.core.chunking import build_records, chunk_transcript, topic_records
from autorag_dagster.core.types import SpeakerTranscript, SpeakerWord, TopicNode, TopicTree, Utterance


def _lines(record) -> list[str]:
    return record.text.split("\n")


def test_chunks_cut_at_utterances_are_bounded_and_overlap(corpus):
    transcript, tree = corpus["meetings/q3-review.wav"]
    chunks = chunk_transcript(transcript, tree, max_chars=400, overlap_chars=120)
    utterance_lines = {f"{u.speaker}: {u.text}" for u in transcript.utterances}

    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.kind == "chunk" and len(chunk.text) <= 400
        assert all(line in utterance_lines for line in _lines(chunk))  # whole utterances only
        assert chunk.speakers == tuple(sorted({line.split(":")[0] for line in _lines(chunk)}))
        assert chunk.start < chunk.end
    for previous, following in zip(chunks, chunks[1:]):
        if previous.path == following.path:  # within a topic the overlap repeats the previous tail
            assert _lines(following)[0] in _lines(previous)
        else:  # across a topic boundary nothing is repeated
            assert not set(_lines(following)) & set(_lines(previous))
        assert previous.start < following.start
    covered = {line for chunk in chunks for line in _lines(chunk)}
    assert covered == utterance_lines
    assert chunks[0].start == transcript.utterances[0].start
    assert chunks[-1].end == transcript.utterances[-1].end


def test_chunk_names_the_deepest_topic_covering_it():
    transcript = SpeakerTranscript(
        key="a.wav",
        duration_s=20,
        language="en",
        utterances=[
            Utterance(speaker="S", start=0, end=9, text="alpha " * 5),
            Utterance(speaker="S", start=11, end=19, text="beta " * 5),
        ],
    )
    child = TopicNode(id="2.1", level=2, start=10, end=20, title="Beta details")
    tree = TopicTree(
        key="a.wav",
        duration_s=20,
        nodes=[
            TopicNode(id="1", level=1, start=0, end=10, title="Alpha"),
            TopicNode(id="2", level=1, start=10, end=20, title="Beta", children=[child]),
        ],
    )
    first, second = chunk_transcript(transcript, tree, max_chars=50, overlap_chars=0)
    assert (first.path, first.title) == ("1", "Alpha")
    assert (second.path, second.title) == ("2.1", "Beta details")


def _sections(tree):
    return [(n.start, n.end) for n in tree.walk() if n.level <= 2 and not any(c.level <= 2 for c in n.children)]


def test_chunks_never_straddle_a_topic_boundary_and_aim_at_15_to_30_seconds(corpus):
    for key, (transcript, tree) in corpus.items():
        chunks = chunk_transcript(transcript, tree)
        bounds = {t for node in tree.walk() for t in (node.start, node.end)}
        for chunk in chunks:
            assert not any(chunk.start < b < chunk.end for b in bounds), (key, chunk)
            assert chunk.end - chunk.start <= 30
        for start, end in _sections(tree):
            inside = [c for c in chunks if start <= c.start and c.end <= end]
            assert inside, (key, start, end)
            if end - start >= 30:  # a long section is shared out in chunks of 15 s or more
                assert all(c.end - c.start >= 15 for c in inside[:-1]), (key, [(c.start, c.end) for c in inside])


def test_an_utterance_across_a_level_2_boundary_is_split_by_its_word_times():
    words = [SpeakerWord(start=i, end=i + 0.8, text=f"w{i}", speaker="S") for i in range(40)]
    transcript = SpeakerTranscript(
        key="b.wav",
        duration_s=40,
        language="en",
        utterances=[Utterance(speaker="S", start=0, end=39.8, text=" ".join(w.text for w in words), words=words)],
    )
    children = [
        TopicNode(id="1.1", level=2, start=0, end=12, title="First"),
        TopicNode(id="1.2", level=2, start=12, end=40, title="Second"),
    ]
    tree = TopicTree(
        key="b.wav", duration_s=40, nodes=[TopicNode(id="1", level=1, start=0, end=40, title="All", children=children)]
    )
    chunks = chunk_transcript(transcript, tree)
    assert [c.path for c in chunks][0] == "1.1" and chunks[0].end <= 12
    assert all(c.start >= 12 for c in chunks[1:]) and {c.path for c in chunks[1:]} == {"1.2"}
    assert all(c.end - c.start <= 30 for c in chunks)
    assert chunks[0].text.split()[-1] == "w11" and chunks[1].text.split()[1] == "w12"


def test_long_utterance_splits_at_word_boundaries_with_word_times():
    words = [SpeakerWord(start=i * 0.5, end=i * 0.5 + 0.4, text=f" word{i}", speaker="SPEAKER_00") for i in range(200)]
    utterance = Utterance(
        speaker="SPEAKER_00", start=0, end=100, text=" ".join(w.text.strip() for w in words), words=words
    )
    transcript = SpeakerTranscript(key="long.wav", duration_s=100, language="en", utterances=[utterance])

    chunks = chunk_transcript(transcript, max_chars=200, overlap_chars=30)

    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    tokens = [c.text.removeprefix("SPEAKER_00: ").split() for c in chunks]
    assert all(t.startswith("word") for chunk in tokens for t in chunk)  # no word cut in half
    seen = []
    for chunk_tokens in tokens:
        seen.extend(t for t in chunk_tokens if t not in seen)
    assert seen == [f"word{i}" for i in range(200)]
    for previous, following in zip(tokens, tokens[1:]):
        assert following[0] in previous  # the last words are repeated
    for chunk, chunk_tokens in zip(chunks, tokens):
        first, last = int(chunk_tokens[0][4:]), int(chunk_tokens[-1][4:])
        assert (chunk.start, chunk.end) == (first * 0.5, last * 0.5 + 0.4)


def test_utterance_without_word_times_gets_interpolated_times():
    utterance = Utterance(speaker="A", start=10, end=30, text=" ".join(["token"] * 100))
    transcript = SpeakerTranscript(key="x.wav", duration_s=30, language="en", utterances=[utterance])
    chunks = chunk_transcript(transcript, max_chars=120, overlap_chars=0)
    assert chunks[0].start == 10 and chunks[-1].end == pytest.approx(30)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(chunks, chunks[1:]))


def test_topic_records_cover_every_node_with_span_path_and_speakers(corpus):
    transcript, tree = corpus["family/mountain-weekend.mp3"]
    tree = tree.model_copy(deep=True)
    tree.nodes[0].children = [
        TopicNode(id="1.1", level=2, start=tree.nodes[0].start, end=10, title="Two trails", summary="Ridge or lake."),
        TopicNode(id="1.2", level=2, start=10, end=tree.nodes[0].end, title="Leaving early", summary="Start at seven."),
    ]
    records = topic_records(tree, transcript)
    assert [r.path for r in records] == ["1", "1.1", "1.2", "2", "3"]
    assert [r.level for r in records] == [1, 2, 2, 1, 1]
    hike = records[0]
    assert hike.text == f"{hike.title}. {hike.summary}"
    assert (hike.start, hike.end) == (tree.nodes[0].start, tree.nodes[0].end)
    assert hike.speakers == ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")
    sleep = records[-1]
    assert sleep.speakers == tuple(sorted({u.speaker for u in transcript.utterances if u.start >= sleep.start}))


def test_build_records_is_chunks_then_topics(corpus):
    transcript, tree = corpus["workshop/bike-repair.m4a"]
    records = build_records(transcript, tree)
    kinds = [r.kind for r in records]
    assert kinds == sorted(kinds) and kinds.count("topic") == len(tree.nodes)
    assert build_records(transcript) == chunk_transcript(transcript)


@pytest.mark.parametrize(("max_chars", "overlap"), [(10, 0), (400, 200), (400, -1)])
def test_bad_sizes_are_rejected(corpus, max_chars, overlap):
    transcript, _ = corpus["workshop/bike-repair.m4a"]
    with pytest.raises(ValueError, match="max_chars|overlap_chars"):
        chunk_transcript(transcript, max_chars=max_chars, overlap_chars=overlap)
