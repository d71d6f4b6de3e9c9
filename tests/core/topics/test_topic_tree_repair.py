import math

import pytest

from autorag_dagster.core.topics.tree import (
    check_tree,
    nodes_for,
    outline_markdown,
    tile,
    topic_quality_problems,
)
from autorag_dagster.core.types import TopicNode, TopicTree


def assert_tiles(spans, lo, hi):
    assert spans[0][0] == lo and spans[-1][1] == hi
    for (_, b), (c, _) in zip(spans, spans[1:]):
        assert b == c
    assert all(b > a for a, b in spans)


@pytest.mark.parametrize(
    "starts",
    [
        [300, 100, 200],  # unsorted
        [100, 100, 100.0, 200],  # duplicates
        [-50, 0, 100, 600, 1e9],  # out of range and at the edges
        [math.nan, math.inf, 150],  # not finite
        [],  # empty
        [10, 20, 30, 40, 50],  # too close together
    ],
)
def test_tile_always_returns_a_tiling(starts):
    spans = tile(starts, 0.0, 600.0, min_len=30)
    assert_tiles(spans, 0.0, 600.0)
    assert all(b - a >= 30 for a, b in spans)


def test_tile_keeps_good_boundaries_and_drops_too_short_spans():
    assert tile([200, 100, 300], 0, 400, min_len=30) == [(0, 100), (100, 200), (200, 300), (300, 400)]
    # 380 would leave a 20 s tail, 110 a 10 s node
    assert tile([100, 110, 380], 0, 400, min_len=30) == [(0, 100), (100, 400)]
    # a parent span shorter than the floor stays whole
    assert tile([5], 0, 20, min_len=30) == [(0, 20)]
    assert tile([5], 10, 10, min_len=30) == []


def test_weak_boundaries_need_longer_spans():
    weak = {100.0}
    spans = tile([50, 100, 200], 0, 300, min_len=30, needs_more=lambda t: t in weak, factor=3)
    # 100 is a weak boundary: both of its spans would need 90 s; 50..100 is only 50 s
    assert spans == [(0, 50), (50, 200), (200, 300)]


def _tree():
    l1 = nodes_for([(0.0, 100.0), (100.0, 250.0)])
    l1[1].children = nodes_for([(100.0, 180.0), (180.0, 250.0)], parent=l1[1])
    for node in [*l1, *l1[1].children]:
        node.title, node.summary = f"Title {node.id}", f"Summary of {node.id}."
    return TopicTree(key="k", duration_s=250.0, title="All", summary="Everything.", nodes=l1)


def test_check_tree_accepts_a_valid_tree_and_names_every_problem():
    tree = _tree()
    assert check_tree(tree) == []
    assert [n.id for n in tree.walk()] == ["1", "2", "2.1", "2.2"]

    broken = _tree()
    broken.nodes[0].end = 90.0  # gap
    broken.nodes[1].children[1].start = 170.0  # overlap
    broken.nodes[1].children[0].title = " "
    broken.nodes[0].summary = ""
    broken.nodes[0].children = [TopicNode(id="1.1", level=2, start=0, end=90, title="t", summary="s")]
    problems = check_tree(broken)
    assert any("gap between 1 and 2" in p for p in problems)
    assert any("2.1 and 2.2 overlap" in p for p in problems)
    assert "node 2.1 has an empty title" in problems
    assert "node 1 has an empty summary" in problems
    assert "node 1 has a single child" in problems


def test_check_tree_bounds_depth_and_ends():
    tree = _tree()
    leaf = tree.nodes[1].children[0]
    leaf.children = [
        TopicNode(id="2.1.1", level=3, start=100, end=140, title="a", summary="b"),
        TopicNode(id="2.1.2", level=3, start=140, end=180, title="a", summary="b"),
    ]
    tree.duration_s = 300.0
    problems = check_tree(tree)
    assert "node 2.1.1 is deeper than 2 levels" in problems
    assert any("ends at 250.000, not 300.000" in p for p in problems)
    assert check_tree(TopicTree(key="k", duration_s=10.0)) == [
        "the file has an empty title or summary",
        "the level-1 topics has no nodes",
    ]


def test_outline_is_indented_markdown():
    outline = outline_markdown(_tree())
    assert outline.splitlines() == [
        "**All**",
        "",
        "- 00:00-01:40 Title 1",
        "- 01:40-04:10 Title 2",
        "  - 01:40-03:00 Title 2.1",
        "  - 03:00-04:10 Title 2.2",
    ]


def test_quality_problems_name_fallbacks_ungrounded_and_echoed_titles():
    from tests.support.synthetic_transcripts import make_transcript

    transcript = make_transcript([("garden", 60.0, ["A", "B"]), ("budget", 60.0, ["B", "A"])], turn_s=10)
    first_words = " ".join(transcript.utterances[0].text.split()[:4])
    nodes = nodes_for([(0.0, 61.0), (61.0, transcript.duration_s)])
    nodes[0].title, nodes[0].summary = (
        "Greenhouse compost and seedlings",
        "Speaker 1 explains how tomatoes are watered.",
    )
    nodes[1].title, nodes[1].summary = "Budget and printing invoices", "Travel costs rise, so printing is cut."
    tree = TopicTree(
        key="k", duration_s=transcript.duration_s, title="Garden and budget", summary="Two subjects.", nodes=nodes
    )
    assert check_tree(tree) == []
    assert topic_quality_problems(tree, [], transcript) == []

    nodes[0].title = first_words
    nodes[1].title, nodes[1].summary = "Library roof repairs", "Speaker 2 at 01:01: travel costs"
    problems = topic_quality_problems(
        tree, [{"stage": "level1", "node": None, "reason": "x"}, {"stage": "summary", "node": "2"}], transcript
    )
    assert problems[0].startswith("level 1 fell back")
    assert problems[1] == "fallbacks: summary x1"
    assert any(p.startswith("node 1 ") and "first words" in p for p in problems)
    assert any(p.startswith("node 2 ") and "not from the transcript" in p for p in problems)
    assert any(p.startswith("node 2 ") and "timestamp" in p for p in problems)
