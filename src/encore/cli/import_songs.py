"""``encore import``: add songs (audio files) to the workspace store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, out
from encore.exceptions import ParameterError
from encore.workspace import Workspace


def print_report(report, what: str) -> None:
    out.print(
        f"{what}: read {report.read}, stored {report.stored}, duplicate {report.duplicate}, "
        f"quarantined {report.quarantined}",
        highlight=False,
    )
    for row in report.quarantine[:10]:
        console.print(f"  [yellow]quarantined[/] {row.source_file}:{row.line}: {row.reason}", highlight=False)
    if report.quarantined > 10:
        console.print(f"  ... and {report.quarantined - 10} more (see the store's quarantine table)")


@handle_errors
def import_command(
    source: Annotated[Path, typer.Argument(help="A CSV of songs (path, track_id, artist, title, label...) or a folder (one sub-folder per label, or flat).")],
    workspace: WorkspaceOption = None,
    label_set: Annotated[str | None, typer.Option(help="Name of the catalogue label set for a label column or label folders.")] = None,
    layout: Annotated[str, typer.Option(help="auto (track list or folder), emotify (the Emotify folder), lastfm (HetRec 2011 folder: one item per artist, no audio) or spotify (streaming-history export: its tracks, no audio).")] = "auto",
) -> None:
    """Import songs into the store; bad rows (e.g. missing files) are quarantined, not fatal."""
    from encore.feedback.importers import LAYOUTS, import_tracks

    if layout not in LAYOUTS:
        raise ParameterError(f"--layout {layout!r} is not known; use one of {', '.join(LAYOUTS)}")
    ws = Workspace.open(workspace)
    with ws.open_store() as db:
        report = import_tracks(db, source, label_set=label_set, layout=layout)
    print_report(report, "songs")
