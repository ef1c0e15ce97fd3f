"""What every command shares: the workspace option, one-line errors, progress bars."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from encore.exceptions import EncoreError, ParameterError

F = TypeVar("F", bound=Callable[..., Any])

LOG_WIDTH = 160
"""Columns for tables written to a file or a pipe (a log, ``| tee``), where rich would otherwise assume 80."""


def _width(stream: Any) -> int | None:
    """None, so rich measures the terminal, when one shows the stream or ``COLUMNS`` is set; else LOG_WIDTH."""
    return None if "COLUMNS" in os.environ or stream.isatty() else LOG_WIDTH


console = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))
out = Console(soft_wrap=True, width=_width(sys.stdout))

WorkspaceOption = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $ENCORE_WORKSPACE or the current folder)."),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (see configs/default.yaml).")]
DeviceOption = Annotated[
    str,
    typer.Option("--device", help="Where the CNN runs: auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="Override a config value, e.g. --set train.epochs=5 (repeatable)."),
]


class ConsoleHandler(logging.Handler):
    """Log records as one unwrapped line each on stderr: ``warning: <message>``.

    A log line is a message to the user like an error line, so it is not wrapped into a
    column or stamped with a time; a long one runs on as the terminal folds it.
    """

    _STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red", "INFO": "cyan", "DEBUG": "dim"}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = self._STYLES.get(record.levelname, "default")
            label = record.levelname.lower()
            console.print(f"[{style}]{label}:[/] {escape(self.format(record))}", highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[ConsoleHandler()], force=True)


def handle_errors(func: F) -> F:
    """Turn encore's own errors, and a file the system cannot open or write, into one red
    line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EncoreError as err:
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as err:  # a missing file, a folder without write permission, a full disk
            where = f"{err.filename}: " if err.filename else ""
            console.print(f"[bold red]error:[/] {escape(f'{where}{err.strerror or err}')}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def shows_progress() -> bool:
    """Whether progress bars are drawn: only on a terminal that can draw them."""
    return console.is_terminal and not console.is_dumb_terminal


def progress_bars() -> Progress:
    """Rich progress bars (description, bar, done of total, time), hidden unless :func:`shows_progress`."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not shows_progress(),
    )


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar (shown only on a terminal); yields an ``advance(n)`` callback."""
    with progress_tasks() as start:
        yield start(description, total)


@contextmanager
def progress_tasks() -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """Rich progress bars (shown only on a terminal) that the work adds as it goes; yields
    ``start(description, total)``, which adds a bar and returns its ``advance(n)``
    (an :data:`encore.progress.ProgressHook`)."""
    with progress_bars() as progress:

        def start(description: str, total: int | None) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)

            def advance(n: int = 1) -> None:
                progress.advance(task, n)

            return advance

        yield start


def report_skipped(path: str, reason: str, *, indent: str = "") -> None:
    """One line for a song that was skipped, naming the file once."""
    text = reason if str(reason).startswith(str(path)) else f"{path}: {reason}"
    console.print(f"{indent}[yellow]skipped[/] {escape(text)}", highlight=False)


def step(message: str) -> None:
    """A line saying what the command is doing now (to stderr, so stdout stays data)."""
    console.print(f"[cyan]>[/] {message}", highlight=False)


def parse_mapping(items: list[str] | None) -> dict[str, str] | None:
    """``--map canonical=column`` options as a dict (None when there are none)."""
    if not items:
        return None
    mapping = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--map {item!r} names no column; write the column after '=', e.g. --map track_id=song")
        key, column = item.split("=", 1)
        mapping[key.strip()] = column.strip()
    return mapping
