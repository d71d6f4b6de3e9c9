"""The messages of every topic stage, as jinja2 templates.

Layout rule: the system message and the fixed instructions come first and the part-specific
transcript comes last, so that the batched calls of one stage share a long identical prefix
and Ollama's per-slot prompt cache can reuse it.
"""

from __future__ import annotations

from jinja2 import Environment, StrictUndefined

from autorag_dagster.core.topics.buckets import fmt_time

Messages = list[dict[str, str]]

_env = Environment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)

SYSTEM = (
    "You structure transcripts of recorded speech. The transcript comes from automatic speech "
    "recognition, so some words may be misheard; never correct them into names you guess. "
    "People are identified only by labels such as Speaker 1 and Speaker 2. "
    "Answer with JSON that follows the given schema and nothing else."
)

_TRANSCRIPT_INTRO = """\
Each transcript line shows its time range (MM:SS-MM:SS), the speaker label and the words spoken."""

_BOUNDARIES = _env.from_string("""\
{{ intro }} The number in brackets at the start of a line is its line number.

Task: divide {{ what }} into {{ unit }}s. A {{ unit }} is a stretch of consecutive lines that stays on one \
subject. For each {{ unit }}, give the number of the line where it begins and a gist of a few words taken \
from the transcript.

Rules:
- The first {{ unit }} begins at line 1; list the {{ unit }}s in time order.
- Begin a new {{ unit }} only where the subject changes: a new question, a new item, a new story or example. \
A change of speaker alone does not begin a new {{ unit }}.
- Inside a stretch where one speaker talks without interruption, begin a new {{ unit }} only if the subject \
plainly changes.
- Each {{ unit }} should last at least {{ min_len }}. Give at most {{ max_topics }} {{ unit }}s; \
one {{ unit }} is right when everything is about one subject.
- Line numbers are whole numbers from 1 to {{ n_lines }}.

{{ what | capitalize }}: {{ span }}, {{ n_lines }} lines, speakers: {{ speakers }}.
{{ transcript }}
""")

_SPLIT = _env.from_string("""\
{{ intro }}

Task: decide whether the section below should be divided into sub-sections.
First write `reason`: one sentence naming the subjects, questions or exchanges the section goes through. \
Then set `subdivide`:
- true when it moves through two or more distinct points (for example a question and its answer followed by \
another question, or two different items), each lasting at least {{ min_len }};
- false when it stays on one point from start to end.

Section: {{ span }}, speakers: {{ speakers }}.
{{ transcript }}
""")

_SUMMARY = _env.from_string("""\
{{ intro }}

Task: write a summary and a title for the part of a recording shown below.
- summary: one or two sentences on what is said. When you say who said something, use the speaker label \
shown on the line where it is said (Speaker 1, Speaker 2, ...), exactly as written, and only labels that \
appear in this part. Do not guess anyone's real name.
- title: three to eight words in sentence case (capital letter only on the first word and on names).
- Use only names of people, places, organisations and products that appear in the transcript, spelled as \
they appear there; otherwise describe instead of naming.
- Do not mention times or line numbers.

Part: {{ span }}, speakers: {{ speakers }}.
{{ transcript }}
""")

_FILE = _env.from_string("""\
Below is the outline of a recording, {{ duration }} long, with speakers {{ speakers }}: \
each section with its time range, title and summary.

Task: write a summary of two to four sentences and a title of three to ten words (sentence case) for the \
whole recording. Say what it covers, in order, and refer to people only by their speaker labels. Use only \
names that appear in the outline.

Outline:
{% for s in sections %}
- {{ s.span }} {{ s.title }}: {{ s.summary }}
{% endfor %}
""")

_REASK = _env.from_string("""\
That answer cannot be used:
{% for p in problems %}
- {{ p }}
{% endfor %}
Answer the same task again, following every rule.""")


def span_text(start: float, end: float) -> str:
    return f"{fmt_time(start)}-{fmt_time(end)}"


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _messages(user: str) -> Messages:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user.strip()}]


def boundary_messages(
    transcript: str, *, level: int, start: float, end: float, n_lines: int, speakers: list[str],
    max_topics: int, min_len: float,
) -> Messages:
    """Level 1: chapters of the whole recording. Level 2: sub-sections of one chapter."""
    what, unit = ("the recording", "chapter") if level == 1 else ("the section", "sub-section")
    return _messages(_BOUNDARIES.render(
        intro=_TRANSCRIPT_INTRO, what=what, unit=unit, span=span_text(start, end), n_lines=n_lines,
        speakers=", ".join(speakers) or "none", max_topics=max_topics, min_len=duration_text(min_len),
        transcript=transcript,
    ))


def split_messages(transcript: str, *, start: float, end: float, speakers: list[str], min_len: float) -> Messages:
    return _messages(_SPLIT.render(
        intro=_TRANSCRIPT_INTRO, span=span_text(start, end), speakers=", ".join(speakers) or "none",
        min_len=duration_text(min_len), transcript=transcript,
    ))


def summary_messages(transcript: str, *, start: float, end: float, speakers: list[str]) -> Messages:
    return _messages(_SUMMARY.render(
        intro=_TRANSCRIPT_INTRO, span=span_text(start, end), speakers=", ".join(speakers) or "none",
        transcript=transcript,
    ))


def file_messages(sections: list[dict], *, duration: float, speakers: list[str]) -> Messages:
    """``sections``: dicts with ``span``, ``title`` and ``summary``."""
    return _messages(_FILE.render(sections=sections, duration=duration_text(duration), speakers=", ".join(speakers) or "none"))


def reask_messages(messages: Messages, answer: str, problems: list[str]) -> Messages:
    """The conversation so far, the unusable answer, and what was wrong with it."""
    return [*messages, {"role": "assistant", "content": answer}, {"role": "user", "content": _REASK.render(problems=problems)}]
