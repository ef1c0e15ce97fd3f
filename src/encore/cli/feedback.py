"""``encore feedback import``: add listener feedback events to the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, handle_errors
from encore.cli.import_songs import print_report
from encore.exceptions import ParameterError
from encore.feedback.importers import import_feedback, import_feedback_frame, read_emotify_annotations
from encore.workspace import Workspace

app = typer.Typer(help="Listener feedback: ratings, likes, dislikes, plays, skips and tags.", no_args_is_help=True)


def parse_mapping(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--map {item!r} must look like canonical=column, e.g. --map track_id=song")
        key, column = item.split("=", 1)
        mapping[key.strip()] = column.strip()
    return mapping


@app.command("import")
@handle_errors
def import_command(
    path: Annotated[Path, typer.Argument(help="A CSV, JSON Lines or Parquet file of events.")],
    workspace: WorkspaceOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="auto, csv, tsv, jsonl, parquet, or emotify (its annotations.csv).")] = "auto",
    map: Annotated[list[str] | None, typer.Option("--map", help="canonical=column, e.g. --map track_id=song_id (repeatable).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV/JSONL file, e.g. latin-1.")] = "utf-8",
    source: Annotated[str | None, typer.Option(help="Source name stored with each event (default: the file name).")] = None,
) -> None:
    """Import feedback events (columns track_id, listener_id, kind, value, timestamp).

    Bad rows are reported and quarantined while the good rows go in; importing the same
    file twice stores nothing new.
    """
    ws = Workspace.open(workspace)
    with ws.open_store() as db:
        if format == "emotify":
            report = import_feedback_frame(db, read_emotify_annotations(path), name=str(path), source=source or "emotify")
        else:
            report = import_feedback(db, path, format=format, mapping=parse_mapping(map), encoding=encoding, source=source)
    print_report(report, "events")
