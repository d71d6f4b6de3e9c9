"""Everything the command line shows a person: rich tables, progress bars and status lines.

The only module that draws: the core, the Ollama client and the planner return data, and the
commands hand that data here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from autorag_dagster.core.chapters import Chapter
from autorag_dagster.core.search import Hit
from autorag_dagster.core.timefmt import clock
from autorag_dagster.ollama.planner import GIB, Measured, Plan, gib
from autorag_dagster.ollama.progress import PullProgress

console = Console()
errors = Console(stderr=True)


def say(message: str) -> None:
    """One status line of a long command."""
    console.print(f"[bold cyan]autorag[/] {escape(message)}")


def say_err(message: str) -> None:
    """A status line on stderr, for commands whose stdout is for programs (``--json``)."""
    errors.print(f"[bold cyan]autorag[/] {escape(message)}")


@contextmanager
def pull_display(model: str, console: Console | None = None) -> Iterator[Callable[[PullProgress], None]]:
    """A rich bar per layer on a terminal, one line per new status otherwise."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        seen: set[str] = set()

        def print_line(update: PullProgress) -> None:
            if update.status not in seen:
                seen.add(update.status)
                console.print(f"{model}: {update.status}", highlight=False)

        yield print_line
        return

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as bar:
        layers: dict[str, TaskID] = {}

        def update_bar(update: PullProgress) -> None:
            if update.digest and update.total:
                if update.digest not in layers:
                    layers[update.digest] = bar.add_task(f"{model} {update.status}", total=update.total)
                bar.update(layers[update.digest], completed=update.completed or 0)
            else:
                bar.console.print(f"{model}: {update.status}", highlight=False)

        yield update_bar


def hits_table(hits: Sequence[Hit], *, query: str = "") -> Table:
    """Search hits for a terminal: file, time span, speakers, topic, text and score."""
    table = Table(title=f"Results for {query!r}" if query else None, show_lines=True)
    for column in ("#", "file", "time", "speakers", "topic", "text", "score"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, 1):
        cells = (
            str(rank),
            hit.file,
            f"{clock(hit.start)}-{clock(hit.end)}",
            ", ".join(hit.speakers),
            f"{hit.path} {hit.title}".strip(),
            hit.text,
            f"{hit.score:.3f}",
        )
        table.add_row(*map(Text, cells))  # Text: transcript brackets are not rich markup
    return table


def chapters_table(key: str, chapters: Sequence[Chapter]) -> Table:
    """A file's chapters (level 1) and sub-chapters (level 2), with their times."""
    table = Table(title=f"Chapters of {key}")
    for column in ("#", "start", "end", "title"):
        table.add_column(column, overflow="fold")
    for chapter in chapters:
        for item in (chapter, *chapter.children):
            indent = "  " if item is not chapter else ""
            table.add_row(item.id, clock(item.start), clock(item.end), Text(indent + item.title))
    return table


def exported(files: dict, copy=None) -> None:
    """Where the exports were written."""
    for kind, path in files.items():
        console.print(f"{kind.replace('_', ' ')}: {escape(str(path))}", highlight=False)
    if copy is not None:
        console.print(f"audio with chapters: {escape(str(copy))}", highlight=False)


def answer_view(result) -> list:
    """``autorag ask``'s answer (an ``AskResult``) for a terminal: the answer, then its sources
    (file, time, speaker, quoted text, link to the page at that time)."""
    heading = {"extractive": "Answer (quoted from the recordings)", "generated": "Answer", "no_answer": "No answer"}
    shown: list = [Text(heading[result.mode], style="bold"), Text(result.answer)]
    if result.mode == "no_answer":
        best = "no row" if result.best_similarity is None else f"the best row scores {result.best_similarity:.3f}"
        shown.append(Text(f"({best}; an answer needs {result.min_similarity:.3f})", style="dim"))
        return shown
    if result.fallback:
        shown.append(
            Text(
                f"(the generated answer did not cite correctly, so this one is quoted: {result.fallback})", style="dim"
            )
        )
    table = Table(title="Sources", show_lines=True)
    for column in ("file", "time", "speaker", "text", "link"):
        table.add_column(column, overflow="fold")
    for c in result.citations:
        cells = (c.file, f"{clock(c.start)}-{clock(c.end)}", c.speaker or ", ".join(c.speakers), c.text, c.link or "")
        table.add_row(*map(Text, cells))
    shown.append(table)
    return shown


def plan_table(plan: Plan, measured: Measured | None = None) -> Table:
    """``autorag tune``'s VRAM plan: the card, the budgets, the LLM's parts, the embedder."""
    llm, embed, gpu = plan.llm, plan.embedder, plan.gpu
    table = Table(title="VRAM plan")
    table.add_column("item")
    table.add_column("GiB", justify="right")
    table.add_column("note")
    rows = [("card", gpu.total_bytes, gpu.source)]
    if gpu.free_bytes is not None:
        rows.append(("free now", gpu.free_bytes, "nvidia-smi"))
    rows += [
        ("Whisper budget", -plan.whisper_bytes, "--whisper-gb"),
        ("safety margin", -plan.margin_bytes, "--margin-gb"),
        ("left for the LLM", plan.llm_budget_bytes, ""),
        (f"{llm.model} weights", llm.weights_bytes, f"/api/tags size ({llm.weights_bytes / 1e9:.1f} GB)"),
        ("KV cache", llm.kv_bytes, f"{llm.parallel} slots x {llm.num_ctx} tokens, {llm.kv_type}"),
        ("overhead allowance", llm.overhead_bytes, "graph and buffers"),
        ("LLM total", llm.total_bytes, f"{gib(plan.llm_budget_bytes - llm.total_bytes)} to spare"),
        (f"{embed.model} alone", embed.total_bytes, "after the LLM is evicted"),
    ]
    if measured is not None:
        rows.append(("measured (/api/ps)", measured.size_bytes, f"{measured.off_percent:+.1f}% vs the plan"))
    for item, value, note in rows:
        table.add_row(item, f"{value / GIB:.2f}", note)
    return table


def models_tables(
    base_url: str, required: dict[str, str], pulled: set[str], running, canonical, identity=None
) -> tuple[Table, Table]:
    """``autorag models``: the required models (pulled or not) and what /api/ps lists as loaded.

    On the packaged server (``identity``: an ``ollama.identity.ServerIdentity``, asked for when
    not given) the titles say so and each model shows the backend that runs it there.
    """
    from autorag_dagster.ollama.identity import backend_label, identify_server

    identity = identity if identity is not None else identify_server(base_url)
    packaged = identity.packaged
    where = f"the packaged autorag server (not Ollama; {identity.version}) at {base_url}" if packaged else base_url
    table = Table(title=f"Required models on {where}")
    for column in ("role", "model", "pulled", *(["backend"] if packaged else [])):
        table.add_column(column)
    for role, model in required.items():
        backend = [backend_label(identity.backend(model)) if identity.backend(model) else "-"] if packaged else []
        table.add_row(role, model, "yes" if canonical(model) in pulled else "NO", *backend)
    loaded = Table(title="Loaded now (/api/ps)")
    if packaged and running:
        simulated = any(identity.backend(m.name) == "deterministic" for m in running)
        loaded.caption = "size: memory the server process gained loading the model (CPU: VRAM 0)" + (
            "; deterministic test backend: computed from the model's shape, on a simulated GPU" if simulated else ""
        )
    for column in ("model", "size (MB)", "VRAM (MB)", "context", "expires", *(["backend"] if packaged else [])):
        loaded.add_column(column)
    for m in running:
        expires = m.expires_at.isoformat(timespec="seconds") if m.expires_at else "-"
        backend = [backend_label(identity.backend(m.name)) if identity.backend(m.name) else "-"] if packaged else []
        loaded.add_row(
            m.name, f"{m.size / 1e6:.0f}", f"{m.size_vram / 1e6:.0f}", str(m.context_length or "-"), expires, *backend
        )
    return table, loaded


def speakers_table(rows: Sequence) -> Table:
    """``autorag speakers list``: identities, their names, talk time and files (``core.speakers.SpeakerRow``)."""
    table = Table(title=f"Voices across the library ({len(rows)} identities)")
    table.add_column("identity", style="bold")
    table.add_column("name")
    table.add_column("talk time", justify="right")
    table.add_column("files (label: shown as)")
    table.add_column("suggested names (never applied)")
    for row in rows:
        files = "\n".join(
            f"{escape(file)} ({label}{'' if shown in (label, row.identity, row.name) else ': ' + escape(shown)})"
            for file, label, shown in row.files
        )
        suggested = "\n".join(
            f'{escape(name)}: {escape(file)} {clock(time)} "{escape(words)}"'
            for name, file, time, words in row.suggestions
        )
        table.add_row(row.identity, escape(row.name) or "[dim]-[/]", clock(row.talk_s), files, suggested or "[dim]-[/]")
    return table


def files_table(report, topic_rows: dict[str, dict] | None = None) -> Table:
    """The main job's result per file: ok or why not, and its topic tree (nodes, fallbacks)."""
    topic_rows = topic_rows or {}
    table = Table(title=f"Files ({report.runs} Dagster run(s), {report.seconds:.0f} s)")
    for column in ("file", "result", "topics", "fallbacks"):
        table.add_column(column, overflow="fold")
    for outcome in report.files:
        row = topic_rows.get(outcome.key, {})
        table.add_row(
            Text(outcome.key),
            "ok" if outcome.ok else ("[yellow]left out[/]" if outcome.left_out else "[red]FAILED[/]"),
            str(row.get("nodes", "-")),
            Text(row.get("fallbacks", "-")),
        )
    return table


def loads_line(loads: dict[str, int]) -> str:
    return "Model loads: " + ", ".join(f"{model} {count}" for model, count in loads.items())


def failures(outcomes, log_file=None) -> None:
    """One plain sentence per failed file, saying what went wrong and where to read more."""
    for outcome in outcomes:
        if outcome.ok or outcome.left_out:  # a left-out file was named with its reason as it happened
            continue
        stage, sep, reason = outcome.error.partition(": ")
        where = f" in the {stage} step" if sep and stage.replace("_", "").isalnum() else ""
        text = (reason if where else outcome.error).rstrip(".")
        more = f" Details: {log_file}" if log_file is not None and where else ""
        console.print(f"[red]{escape(outcome.key)}[/] failed{where}: {escape(text)}.{escape(more)}")


@contextmanager
def stage_progress() -> Iterator[Callable[[str, str], None]]:
    """One live line while the graph runs: the step running now and the file it is at."""
    with console.status("starting the run ...") as status:

        def update(stage: str, detail: str) -> None:
            status.update(f"[bold]{escape(stage)}[/] {escape(detail)}".rstrip())
            if not console.is_terminal and not detail:
                console.print(f"autorag step {stage}", highlight=False)

        yield update
