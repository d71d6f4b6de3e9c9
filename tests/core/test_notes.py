"""The Markdown note of a recording, rendered by a CommonMark parser (markdown-it-py, as rich uses)."""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

from autorag_dagster.core.notes import md, render_note, write_note
from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree, Utterance
from autorag_dagster.layout import DataLayout
from autorag_dagster.settings import load_settings

HOSTILE = "**bold** _it_ [link](http://x.test) <b>tag</b> | pipe `code` &amp; ![img](y)"

PARSER = MarkdownIt("commonmark").enable("table")


def recording(title: str = "Club call", hostile: str = HOSTILE) -> tuple[SpeakerTranscript, TopicTree]:
    utterances = [
        Utterance(speaker="SPEAKER_00", start=0.0, end=20.0, text="Welcome everyone, the budget comes first today."),
        Utterance(speaker="SPEAKER_01", start=20.0, end=50.0, text=f"# Not a heading {hostile} and then more words"),
        Utterance(speaker="SPEAKER_00", start=50.0, end=60.0, text="1. not a list"),
        Utterance(
            speaker="SPEAKER_01", start=60.0, end=90.0, text="- We will print the posters on Friday, all of them."
        ),
    ]
    transcript = SpeakerTranscript(key="club/call 1.wav", duration_s=90.0, language="en", utterances=utterances)
    tree = TopicTree(
        key="club/call 1.wav",
        duration_s=90.0,
        title=title,
        summary=f"> {hostile}",
        nodes=[
            TopicNode(
                id="1",
                level=1,
                start=0.0,
                end=50.0,
                title=f"Budget {hostile}",
                summary="Money left.",
                children=[
                    TopicNode(id="1.1", level=2, start=0.0, end=20.0, title="Welcome", summary="Hello."),
                    TopicNode(id="1.2", level=2, start=20.0, end=50.0, title="Costs", summary=""),
                ],
            ),
            TopicNode(id="2", level=1, start=50.0, end=90.0, title="Posters", summary="Who prints them."),
        ],
    )
    return transcript, tree


def rendered(note: str) -> str:
    return PARSER.render(note)


def test_every_section_is_there_with_timestamps_and_talk_time():
    transcript, tree = recording()
    note = render_note(transcript, tree)
    page = rendered(note)
    assert page.startswith("<h1>Club call</h1>")
    for heading in ("Summary", "Outline", "Speakers", "Key quotes"):
        assert f"<h2>{heading}</h2>" in page
    outline = note.split("## Outline")[1].split("## Speakers")[0]
    assert "- 00:00–00:50 **Budget" in outline and "  - 00:20–00:50 **Costs**" in outline
    assert "- 00:50–01:30 **Posters**: Who prints them." in outline
    right = '<td style="text-align:right">'
    assert f"<td>SPEAKER_01</td>\n{right}01:00</td>\n{right}67 %</td>" in page  # 60 s of 90
    quotes = note.split("## Key quotes")[1]
    assert "— SPEAKER_01, 00:20" in quotes and "— SPEAKER_01, 01:00" in quotes
    assert "<blockquote>" in page


def test_recognised_and_generated_text_renders_as_itself():
    transcript, tree = recording(title=f"## {HOSTILE}")
    page = rendered(render_note(transcript, tree))
    for tag in ("<a ", "<img", "<b>", "<em>", "<code>", "<ol", "<hr"):
        assert tag not in page, tag
    assert page.count("<h1>") == 1 and page.count("<strong>") == 4  # the outline's titles only
    shown = html.escape(HOSTILE, quote=False)
    assert f"<h1>## {shown}</h1>" in page
    assert f"<p>&gt; {shown}</p>" in page  # the summary: not a quote
    assert f"# Not a heading {shown}" in page
    for line in ("1. not a list", "2) nor this", "- nor this", "+ nor", "=== nor", "> nor"):
        assert PARSER.render(md(line)) == f"<p>{html.escape(line, quote=False)}</p>\n", line
    # A table cell keeps its pipe.
    assert PARSER.render(f"| a |\n| --- |\n| {md('x | y')} |") == (
        "<table>\n<thead>\n<tr>\n<th>a</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>x | y</td>\n</tr>\n</tbody>\n</table>\n"
    )


def test_one_note_per_recording_under_a_stable_name_rewritten_when_the_tree_changes(tmp_path):
    layout = DataLayout(tmp_path / "data")
    path = layout.note_path("club/call 1.wav")
    assert path.parent == tmp_path / "data" / "notes" and path.suffix == ".md"
    assert layout.note_path("club/call 1.wav") == path != layout.note_path("club/call 2.wav")
    assert load_settings(data_dir=tmp_path / "d", notes_dir=tmp_path / "vault").layout.note_path("a.wav").parent == (
        tmp_path / "vault"
    )

    transcript, tree = recording()
    write_note(transcript, tree, path)
    tree.nodes[1].title = "Printing"
    write_note(transcript, tree, path)
    assert "**Printing**" in path.read_text(encoding="utf-8") and "**Posters**" not in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_recording_without_speech_or_topics_gets_a_short_note():
    empty = SpeakerTranscript(key="quiet.wav", duration_s=3.0, language="en", utterances=[])
    note = render_note(empty, TopicTree(key="quiet.wav", duration_s=3.0))
    assert note.startswith("# quiet\n") and "No topics." in note and "No speech." in note and "No quotes." in note
