"""A self-contained HTML page per file, an index page, and a PNG preview.

The page works offline (no CDN: its CSS and JS are inlined from ``core/templates``): a speaker
timeline, the topic tree as time bands (one row per level, L1 on top), the outline with
summaries a click away, and the transcript with timestamps. Clicking a topic shows its summary
and highlights and scrolls to its part of the transcript. A time in the address
(``page.html#t=72``, ``#t=1:12``, ``#t=72,90``) highlights and scrolls to the transcript at
that time, on load and when the address changes; each timestamp links to its own time.

Every piece of transcript or LLM text goes through Jinja2 autoescaping; the inline script is
pinned by a Content-Security-Policy hash, so even markup that slipped through could not run.

Layout on disk (``viz_dir``): ``<key>.html`` per file, a ``<key>.page.json`` sidecar that the
index is built from, and ``index.html``. Writes replace files atomically.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from autorag_dagster.core.atomic import write_text
from autorag_dagster.core.timefmt import clock
from autorag_dagster.core.types import AudioInfo, SpeakerTranscript, TopicTree

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BAND_COLORS = ("#dbe7f3", "#fbe3cf", "#d9efd6", "#f6d5d5", "#e6def0", "#efe1dc")
SIDECAR_SUFFIX = ".page.json"
_TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)

_env = Environment(
    loader=PackageLoader("autorag_dagster.core", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["clock"] = clock


@dataclass(frozen=True)
class PageInfo:
    """What the index shows about one file (stored beside its page)."""

    key: str
    href: str
    title: str
    summary: str
    duration_s: float
    language: str
    speakers: list[str]
    topics: int


def page_relpath(key: str) -> str:
    """Where a file's page lives under the viz folder: its key plus ``.html``."""
    return f"{key}.html"


def _static(name: str) -> str:
    return _env.loader.get_source(_env, name)[0]


def _csp_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _percent(seconds: float, duration: float) -> float:
    return round(100 * max(0.0, min(seconds, duration)) / duration, 3)


def _span(start: float, end: float, duration: float) -> dict:
    """Where a span sits on the time axis, in percent of the width."""
    left = _percent(start, duration)
    return {"left": left, "width": _percent(end, duration) - left}


def _ticks(duration: float) -> list[dict]:
    step = next((s for s in _TICK_STEPS if duration / s <= 10), _TICK_STEPS[-1])
    return [{"left": _percent(t, duration), "label": clock(t)} for t in range(0, int(duration) + 1, step)]


def speaker_colors(transcript: SpeakerTranscript) -> dict[str, str]:
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(transcript.speakers)}


def _duration(transcript: SpeakerTranscript, tree: TopicTree | None) -> float:
    ends = [transcript.duration_s, tree.duration_s if tree else 0.0, *(u.end for u in transcript.utterances)]
    return max(max(ends), 1e-3)


def _context(transcript: SpeakerTranscript, tree: TopicTree | None, audio: AudioInfo | None) -> dict:
    duration = _duration(transcript, tree)
    colors = speaker_colors(transcript)
    talk = transcript.talk_time()
    nodes = list(tree.walk()) if tree else []
    js = _static("viz.js")
    return {
        "key": transcript.key,
        "title": (tree.title if tree and tree.title else transcript.key),
        "summary": tree.summary if tree else "",
        "language": transcript.language,
        "duration": duration,
        "audio": audio,
        "css": Markup(_static("viz.css")),
        "js": Markup(js),
        "script_hash": _csp_hash(js),
        "speakers": [
            {
                "name": name,
                "color": color,
                "talk": talk.get(name, 0.0),
                "share": round(100 * talk.get(name, 0.0) / duration, 1),
                "turns": [
                    {**_span(u.start, u.end, duration), "utterance": u}
                    for u in transcript.utterances
                    if u.speaker == name
                ],
            }
            for name, color in colors.items()
        ],
        "levels": [
            [
                {**_span(n.start, n.end, duration), "node": n, "color": BAND_COLORS[i % len(BAND_COLORS)]}
                for i, n in enumerate(x for x in nodes if x.level == level)
            ]
            for level in range(1, max((n.level for n in nodes), default=0) + 1)
        ],
        "ticks": _ticks(duration),
        "nodes": tree.nodes if tree else [],
        "topics": nodes,
        "utterances": [{"u": u, "color": colors[u.speaker]} for u in transcript.utterances],
    }


def render_page(transcript: SpeakerTranscript, tree: TopicTree | None = None, audio: AudioInfo | None = None) -> str:
    """The HTML of one file's page."""
    return _env.get_template("file.html.j2").render(_context(transcript, tree, audio))


def render_index(pages: list[PageInfo], title: str = "Transcripts") -> str:
    return _env.get_template("index.html.j2").render(
        title=title, pages=sorted(pages, key=lambda p: p.key), css=Markup(_static("viz.css"))
    )


def _inside(viz_dir: Path, relpath: str) -> Path:
    path = (viz_dir / relpath).resolve()
    if not path.is_relative_to(viz_dir.resolve()):
        raise ValueError(f"the key {relpath!r} would write outside {viz_dir}")
    return path


def write_page(
    viz_dir: str | Path, transcript: SpeakerTranscript, tree: TopicTree | None = None, audio: AudioInfo | None = None
) -> Path:
    """Write ``<viz_dir>/<key>.html`` and its sidecar; return the page's path."""
    viz_dir = Path(viz_dir)
    page = _inside(viz_dir, page_relpath(transcript.key))
    info = PageInfo(
        key=transcript.key,
        href=page_relpath(transcript.key),
        title=tree.title if tree and tree.title else "",
        summary=tree.summary if tree else "",
        duration_s=_duration(transcript, tree),
        language=transcript.language,
        speakers=transcript.speakers,
        topics=sum(1 for _ in tree.walk()) if tree else 0,
    )
    write_text(page, render_page(transcript, tree, audio))
    write_text(page.with_name(page.name.removesuffix(".html") + SIDECAR_SUFFIX), json.dumps(asdict(info)))
    return page


def write_index(viz_dir: str | Path) -> Path:
    """(Re)write ``<viz_dir>/index.html`` listing every page written so far."""
    viz_dir = Path(viz_dir)
    pages = [PageInfo(**json.loads(p.read_text(encoding="utf-8"))) for p in viz_dir.rglob(f"*{SIDECAR_SUFFIX}")]
    return write_text(viz_dir / "index.html", render_index(pages))


def write_preview_png(transcript: SpeakerTranscript, tree: TopicTree | None, path: str | Path) -> Path:
    """A small PNG of the speaker timeline and topic bands (for the Dagster UI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    duration = _duration(transcript, tree)
    colors = speaker_colors(transcript)
    nodes = list(tree.walk()) if tree else []
    levels = max((n.level for n in nodes), default=0)
    rows = [*(f"L{level}" for level in range(levels, 0, -1)), *reversed(colors)]  # bottom to top
    figure = Figure(figsize=(10, 0.45 * len(rows) + 0.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for y, speaker in enumerate(rows[levels:], start=levels):
        spans = [(u.start, u.end - u.start) for u in transcript.utterances if u.speaker == speaker]
        axes.broken_barh(spans, (y - 0.35, 0.7), facecolors=colors[speaker])
    for level in range(1, levels + 1):
        for i, node in enumerate(n for n in nodes if n.level == level):
            width = node.end - node.start
            color = BAND_COLORS[i % len(BAND_COLORS)]
            axes.broken_barh([(node.start, width)], (levels - level - 0.4, 0.8), facecolors=color, edgecolors="#555")
            label = _plain(node.title, int(width / duration * 110))
            if label:
                axes.text(
                    node.start + width / 2, levels - level, label, ha="center", va="center", fontsize=7, clip_on=True
                )
    axes.set_yticks(range(len(rows)), [_plain(r, 18) for r in rows], fontsize=8)
    axes.set_xlim(0, duration)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.xaxis.set_major_formatter(lambda seconds, _: clock(max(seconds, 0)))
    axes.tick_params(axis="x", labelsize=8)
    axes.set_title(_plain(tree.title if tree and tree.title else transcript.key, 100), fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _plain(text: str, max_chars: int) -> str:
    """Text for matplotlib: shortened, and with ``$`` escaped so it is never read as math."""
    text = text if len(text) <= max_chars else text[: max(max_chars - 1, 0)].rstrip() + "…"
    return text.replace("$", r"\$") if max_chars > 1 else ""
