"""``encore import``: add songs (audio files) to the workspace store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, out, parse_mapping
from encore.exceptions import ParameterError
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.feedback.importers.tracks import TrackImportReport


def print_report(report, what: str) -> None:
    out.print(
        f"{what}: read {report.read}, stored {report.stored}, duplicate {report.duplicate}, quarantined {report.quarantined}",
        highlight=False,
    )
    for row in report.quarantine[:10]:
        console.print(f"  [yellow]quarantined[/] {row.source_file}:{row.line}: {row.reason}", highlight=False)
    if report.quarantined > 10:
        console.print(f"  ... and {report.quarantined - 10} more (see the store's quarantine table)")


@handle_errors
def import_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A CSV of songs (path, track_id, artist, title, label...) or a folder (one sub-folder per label, or flat)."
        ),
    ],
    workspace: WorkspaceOption = None,
    label_set: Annotated[
        str | None,
        typer.Option(
            help="Name of the label set for a CSV's label column or the label sub-folders (default: catalogue for a CSV, folder for sub-folders, genre for --layout emotify)."
        ),
    ] = None,
    layout: Annotated[
        str,
        typer.Option(
            help="auto (track list or folder), emotify (the Emotify folder), lastfm (HetRec 2011 folder: one item per artist, no audio) or spotify (streaming-history export: its tracks, no audio)."
        ),
    ] = "auto",
    map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="FIELD=COLUMN",
            help="A track list's column for path, track_id, artist, title, duration or label, e.g. --map label=Quadrant (repeatable).",
        ),
    ] = None,
    path_format: Annotated[
        str | None,
        typer.Option(
            help="Make each row's audio path from its columns instead of a path column, e.g. 'audio/{Quadrant}/{Song}.mp3' (relative to the list's folder).",
        ),
    ] = None,
) -> None:
    """Import songs into the store; bad rows (e.g. missing files) are quarantined, not fatal."""
    from encore.feedback.importers import LAYOUTS, import_tracks

    if layout not in LAYOUTS:
        raise ParameterError(f"--layout {layout!r} is not known; use one of {', '.join(LAYOUTS)}")
    ws = Workspace.open(workspace)
    with ws.open_store() as db:
        report = import_tracks(
            db, source, label_set=label_set, layout=layout, mapping=parse_mapping(map), path_format=path_format
        )
    print_report(report, "songs")
    print_labels_and_artists(report, named=label_set is not None)


def print_labels_and_artists(report: TrackImportReport, *, named: bool) -> None:
    """Where the labels went, and what the songs' artists mean for the splits."""
    if report.label_set:
        version = f"version {report.label_version}"
        if not report.label_set_new_version:
            version += ", unchanged"
        how = "" if named else " (the default name; choose one with --label-set NAME)"
        out.print(
            f"labels: {report.labelled} songs in label set '{report.label_set}' ({version}){how}; "
            "`encore labels` uses it when it is the only label set stored, "
            f"else --set labels.label_set={report.label_set}",
            highlight=False,
        )
    if report.artists_from_tags:
        out.print(f"artists: read from the files' own tags for {report.artists_from_tags} songs", highlight=False)
    if report.artists_filled:
        out.print(f"artists: filled in for {report.artists_filled} stored songs that had none", highlight=False)
    if report.without_artist:
        console.print(
            f"[yellow]warning:[/] {report.without_artist} songs have no artist (no artist column, no artist "
            "tag in the file), so each is its own group in the splits and one artist's songs can land in both "
            "training and test. Fix: import a CSV with an artist column (path, artist, ...) for these files, "
            "or tag the files' artist, and import again (stored songs get the artist they lack)",
            highlight=False,
        )
