"""What speech recognition, the LLM and file names write reaches Dagster's Markdown metadata as text."""

from __future__ import annotations

import re
from html import unescape

import pytest
from markdown_it import MarkdownIt

from autorag_dagster.core.markdown import md_escape
from autorag_dagster.core.topics import outline_markdown
from autorag_dagster.core.types import TopicNode, TopicTree, Utterance
from autorag_dagster.defs.checks import result
from autorag_dagster.defs.metadata import per_file_table, talk_time_table, utterance_excerpt

HOSTILE = "pipes | in *bold* and _under_ <script>alert('x')</script> `code` [link](http://x) ~~gone~~ # & \\"
# The UI renders GitHub-flavoured Markdown with HTML allowed: the strictest reading of the text.
RENDER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def html(markdown: str) -> str:
    return RENDER.render(markdown)


def assert_inert(rendered: str) -> None:
    assert "<script" not in rendered
    for tag in ("<em>", "<strong>", "<code>", "<a ", "<s>", "<h1>"):
        assert tag not in rendered.replace("<strong>SPEAKER_00</strong>", ""), tag


def test_md_escape_keeps_the_text_and_renders_it_literally():
    rendered = html(md_escape(HOSTILE))
    assert_inert(rendered)
    assert unescape(rendered.removeprefix("<p>").removesuffix("</p>\n")) == HOSTILE
    assert md_escape("two\nlines\r\n  here") == "two lines here"


def test_per_file_table_keeps_a_pipe_in_its_cell():
    value = per_file_table(
        [
            {"file": "a|b.wav", "title": HOSTILE, "nodes": 3},
            {"file": "<script>.mp3", "title": "plain", "nodes": 1},
        ]
    )
    rendered = html(value.value)
    assert_inert(rendered)
    rows = re.findall(r"<tr>(.*?)</tr>", rendered, re.DOTALL)
    assert len(rows) == 3
    assert [len(re.findall(r"<t[hd]>", row)) for row in rows] == [3, 3, 3]
    assert "<td>a|b.wav</td>" in rendered
    assert "<td>&lt;script&gt;.mp3</td>" in rendered


def test_utterance_excerpt_talk_time_and_check_problems_escape_what_was_said():
    utterances = [Utterance(speaker="SPEAKER_00", start=0.0, end=2.0, text=HOSTILE)]
    excerpt = html(utterance_excerpt(utterances).value)
    assert "<strong>SPEAKER_00</strong> [00:00]:" in excerpt
    assert_inert(excerpt)
    assert "pipes | in *bold*" in excerpt

    talk = html(talk_time_table({"Ann | *boss*": 10.0}).value)
    assert "<td>Ann | *boss*</td>" in talk

    check = result({"x|y.wav": [f"node 1 {HOSTILE!r}: no word of the span"]})
    problems = html(check.metadata["problems"].value)
    assert problems.count("<li>") == 1 and "<strong>x|y.wav</strong>" in problems
    assert "<script" not in problems and "<em>" not in problems


@pytest.mark.parametrize("title", [HOSTILE, "Budget *cuts* | <b>now</b>"])
def test_the_outline_escapes_the_llm_titles(title):
    tree = TopicTree(
        key="k",
        duration_s=60.0,
        title=title,
        nodes=[TopicNode(id="1", level=1, start=0.0, end=60.0, title=title)],
    )
    rendered = html(outline_markdown(tree))
    assert rendered.count("<strong>") == 1 and rendered.count("<li>") == 1
    assert "<script" not in rendered and "<em>" not in rendered and "<b>" not in rendered
