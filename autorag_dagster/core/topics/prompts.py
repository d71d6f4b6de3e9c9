"""The messages of every topic stage, as jinja2 templates.

Layout rule: the system message and the fixed instructions come first and the part-specific
transcript comes last, so that the batched calls of one stage share a long identical prefix
and Ollama's per-slot prompt cache can reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined

from autorag_dagster.core.topics.buckets import fmt_time

Messages = list[dict[str, str]]

PROMPT_VERSION = "topics-6"
"""Changes whenever a prompt or a schema changes meaning: part of every cached answer's key."""

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
Below are numbered places in {{ what }} where the words change. At each place you see the words \
just before it and the words just after it.

Task: decide at which places a new subject begins, so that {{ what }} divides into {{ unit }}s, each about \
one subject.
- A new subject is a new item, question or story, often announced ("now", "next", "finally", \
"let's talk about"). A new speaker, or a reply on the same subject, is not a new subject.
- Each {{ unit }} should last at least {{ min_len }}; give at most {{ max_changes }} places, or none when \
everything is about one subject.
- Answer with the numbers of those places, in increasing order.
{% if free %}
- If a new subject clearly begins where no numbered place is, give its time in seconds from the start \
of the recording in other_changes (at most {{ free }}); otherwise leave other_changes empty.
{% endif %}

- "words change" says how much the vocabulary changes at a place. Where it is strong, or announced, \
a new subject begins: always include those places. Where it is weak a new subject rarely begins.

Example: at [1] the words before and after are both about a football match; at [2] the words after begin \
"Next, the new library"; at [3] a new speaker answers a question about the library. Answer: {"changes": [2]}

{{ what | capitalize }}: {{ span }}, speakers: {{ speakers }}.
{% for c in candidates %}
[{{ c.number }}] at {{ c.time }}{% if c.change %}, words change: {{ c.change }}{% endif %}

  before: "{{ c.before }}"
  after: "{{ c.after }}"
{% endfor %}
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
Task: say what the speakers talk about in the part of a recording below.
- summary: one or two sentences in your own words about its subject. When you say who said something, \
use the speaker label exactly as written (Speaker 1, Speaker 2, ...).
- title: two to six words naming the subject. Use words from the transcript; do not copy its first words.
- Use only names of people and places that appear in the transcript.

Transcript ({{ speakers }}):
{{ transcript }}
""")

_SUMMARY_MERGE = _env.from_string("""\
Task: below are summaries of consecutive stretches of one part of a recording, in order. Say what the \
speakers talk about in the whole part.
- summary: one or two sentences in your own words about its subject. When you say who said something, \
use the speaker label exactly as written (Speaker 1, Speaker 2, ...).
- title: two to six words naming the subject. Use words from the summaries.
- Use only names of people and places that appear in the summaries.

Summaries ({{ speakers }}):
{% for s in summaries %}
{{ loop.index }}. {{ s }}
{% endfor %}
""")

# The worked example is a previous turn of the conversation, so a small model takes it as done
# rather than as part of the text to answer.
_SUMMARY_EXAMPLE_TRANSCRIPT = """\
Speaker 1: Good evening. The library will close in June so the roof can be repaired.
Speaker 2: Where will the book club meet then?
Speaker 1: In the school hall on Thursdays."""
_SUMMARY_EXAMPLE_ANSWER = (
    '{"summary": "Speaker 1 says the library closes in June for roof repairs, so the book club moves to the '
    'school hall.", "title": "Library roof repairs"}'
)

_FILE = _env.from_string("""\
Below is the outline of a recording, {{ duration }} long, with speakers {{ speakers }}: \
each section's title and summary, in order.

Task: write a summary of two to four sentences and a title of three to ten words (sentence case) for the \
whole recording. Say what it covers, in order, and refer to people only by their speaker labels. Use only \
names that appear in the outline.

Outline:
{% for s in sections %}
- {{ s.title }}: {{ s.summary }}
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


@dataclass(frozen=True)
class CandidateView:
    """One numbered candidate as the boundary prompt shows it."""

    number: int
    time: str
    before: str
    after: str
    change: str = ""  # how much the words change there: "strong", "clear" or "weak" ("" unknown)


def boundary_messages(
    candidates: list[CandidateView],
    *,
    level: int,
    start: float,
    end: float,
    speakers: list[str],
    max_changes: int,
    min_len: float,
    free: int = 0,
) -> Messages:
    """Level 1: chapters of the whole recording. Level 2: sub-sections of one chapter. With ``free``,
    the model may also give that many times of its own (a model trusted to place boundaries)."""
    what, unit = ("the recording", "chapter") if level == 1 else ("the section", "sub-section")
    return _messages(
        _BOUNDARIES.render(
            what=what,
            unit=unit,
            span=span_text(start, end),
            speakers=", ".join(speakers) or "none",
            max_changes=max_changes,
            min_len=duration_text(min_len),
            candidates=candidates,
            free=free,
        )
    )


def split_messages(transcript: str, *, start: float, end: float, speakers: list[str], min_len: float) -> Messages:
    return _messages(
        _SPLIT.render(
            intro=_TRANSCRIPT_INTRO,
            span=span_text(start, end),
            speakers=", ".join(speakers) or "none",
            min_len=duration_text(min_len),
            transcript=transcript,
        )
    )


def summary_messages(transcript: str, *, speakers: list[str]) -> Messages:
    """Only the part's own lines (``Speaker K: words``, no times): one task, one worked example
    (as an earlier exchange of the conversation)."""
    example = _SUMMARY.render(speakers="Speaker 1, Speaker 2", transcript=_SUMMARY_EXAMPLE_TRANSCRIPT)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": example.strip()},
        {"role": "assistant", "content": _SUMMARY_EXAMPLE_ANSWER},
        {
            "role": "user",
            "content": _SUMMARY.render(speakers=", ".join(speakers) or "no speaker", transcript=transcript).strip(),
        },
    ]


def summary_merge_messages(summaries: list[str], *, speakers: list[str]) -> Messages:
    """One part's title and summary from the summaries of its windows, in order (the part's lines
    did not fit in one prompt)."""
    return _messages(_SUMMARY_MERGE.render(summaries=summaries, speakers=", ".join(speakers) or "no speaker"))


def summary_scaffold() -> str:
    """The summary prompt's own words (system message, instructions, worked example), without any transcript."""
    return "\n".join(
        [SYSTEM, _SUMMARY.render(speakers="", transcript=""), _SUMMARY_EXAMPLE_TRANSCRIPT, _SUMMARY_EXAMPLE_ANSWER]
    )


def file_scaffold() -> str:
    return SYSTEM + "\n" + _FILE.render(sections=[], duration="", speakers="")


def file_messages(sections: list[dict], *, duration: float, speakers: list[str]) -> Messages:
    """``sections``: dicts with ``span``, ``title`` and ``summary``."""
    return _messages(
        _FILE.render(sections=sections, duration=duration_text(duration), speakers=", ".join(speakers) or "none")
    )


def reask_messages(messages: Messages, answer: str, problems: list[str]) -> Messages:
    """The conversation so far, the unusable answer, and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": _REASK.render(problems=problems)},
    ]
