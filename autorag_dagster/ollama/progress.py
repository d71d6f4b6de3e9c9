"""How a pull shows its progress: a rich bar per layer on a terminal, status lines otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn


@dataclass(frozen=True)
class PullProgress:
    """One streamed line of /api/pull."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


@contextmanager
def pull_display(model: str, console: Console | None = None) -> Iterator[Callable[[PullProgress], None]]:
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
