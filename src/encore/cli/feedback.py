"""``encore feedback import``: add listener feedback events to the store, from generic tables
or named exports (Emotify annotations, Last.fm HetRec 2011, Spotify streaming history)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from encore.cli.common import WorkspaceOption, handle_errors, out, parse_mapping, progress_bar
from encore.cli.import_songs import print_report
from encore.exceptions import ParameterError
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.feedback.importers import ImportReport
    from encore.store import Store

app = typer.Typer(help="Listener feedback: ratings, likes, dislikes, plays, skips and tags.", no_args_is_help=True)


NAMED_FORMATS = ("emotify", "lastfm", "spotify")


def import_named(
    db: Store,
    path: Path,
    format: str,
    *,
    encoding: str | None,
    source: str | None,
    listener: str | None,
    progress: Callable[[int], None],
) -> ImportReport:
    """Imports a named real-world export (``emotify``, ``lastfm``, ``spotify``)."""
    from encore.feedback.importers import import_feedback_frame, import_lastfm, import_spotify, read_emotify_annotations

    if format == "emotify":
        return import_feedback_frame(db, read_emotify_annotations(path), name=str(path), source=source or "emotify")
    if format == "lastfm":
        return import_lastfm(db, path, tags_encoding=encoding or "latin-1", progress=progress)
    return import_spotify(db, path, listener_id=listener, encoding=encoding or "utf-8", progress=progress)


def print_skip_rate(db: Store, top: int = 10) -> None:
    """After a Spotify import: the skip rate (plays under 30 s) overall and per most-played track."""
    from encore.targets.appeal import skip_rates

    rates = skip_rates(db.events(["play", "skip"]), durations=db.tracks().set_index("track_id")["duration"].dropna().to_dict())
    tracks = db.tracks().set_index("track_id")
    total = int(rates["listens"].sum())
    out.print(f"skip rate (plays under 30 s): {rates['skips'].sum() / max(total, 1):.3f} over {total} plays", highlight=False)
    for row in rates.head(top).itertuples(index=False):
        name = (
            f"{tracks.at[row.track_id, 'artist']} - {tracks.at[row.track_id, 'title']}"
            if row.track_id in tracks.index
            else row.track_id
        )
        out.print(f"  {name}: {row.listens} plays, skip rate {row.skip_rate:.2f}", highlight=False)
    out.print("per track: encore store summary <track_id>, or skip_rates(store.events()) in Python", highlight=False)


@app.command("import")
@handle_errors
def import_command(
    path: Annotated[
        Path, typer.Argument(help="A file of events (CSV, TSV, JSON Lines, Parquet), or a named export's file or folder.")
    ],
    workspace: WorkspaceOption = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="auto, csv, tsv, jsonl, parquet; or emotify (annotations.csv), lastfm (the HetRec 2011 folder: tags and play counts), spotify (StreamingHistory*.json or their folder).",
        ),
    ] = "auto",
    map: Annotated[
        list[str] | None,
        typer.Option("--map", metavar="FIELD=COLUMN", help="canonical=column, e.g. --map track_id=song_id (repeatable)."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding, e.g. latin-1 (default utf-8; for lastfm, of tags.dat: latin-1).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name stored with each event (default: the file name).")] = None,
    listener: Annotated[str | None, typer.Option(help="spotify: the listener id (default spotify-<folder name>).")] = None,
    play_unit: Annotated[
        str | None,
        typer.Option(
            "--play-unit",
            help="ms or s: the unit of a play's or skip's value (stored as milliseconds). Without it, a file whose "
            "plays nearly all last under a second is refused, as it most likely counts seconds.",
        ),
    ] = None,
) -> None:
    """Import feedback events (columns track_id, listener_id, kind, value, timestamp).

    Bad rows are reported and quarantined while the good rows go in; importing the same
    file twice stores nothing new. Named exports need their songs first:
    `encore import <folder> --layout emotify|lastfm|spotify`.
    """
    from encore.feedback.importers import FORMATS, import_feedback
    from encore.feedback.importers.events import PLAY_UNITS
    from encore.feedback.importers.spotify import SpotifyImportReport

    if play_unit is not None and play_unit not in PLAY_UNITS:
        raise ParameterError(f"--play-unit {play_unit!r} is unknown; use {' or '.join(PLAY_UNITS)}")
    if format not in ("auto", *FORMATS, *NAMED_FORMATS):
        raise ParameterError(f"--format {format!r} is not known; use one of {', '.join(['auto', *FORMATS, *NAMED_FORMATS])}")
    ws = Workspace.open(workspace)
    with ws.open_store() as db:
        with progress_bar("storing events", total=None) as advance:
            if format in NAMED_FORMATS:
                report = import_named(db, path, format, encoding=encoding, source=source, listener=listener, progress=advance)
            else:
                report = import_feedback(
                    db,
                    path,
                    format=format,
                    mapping=parse_mapping(map),
                    encoding=encoding or "utf-8",
                    source=source,
                    progress=advance,
                    play_unit=play_unit,
                )
        print_report(report, "events")
        if isinstance(report, SpotifyImportReport):
            if report.unknown_tracks:
                out.print(
                    f"set aside: {report.unknown_plays} plays of {report.unknown_tracks} tracks the store does not hold; "
                    f"keep them as items without audio with `encore import {path} --layout spotify`, then import this "
                    "history again",
                    highlight=False,
                )
            matched = report.matched
            out.print(
                f"songs with audio: plays of {matched} stored songs matched by artist and title"
                + ("" if matched else " (import your audio first, with artist and title tags or columns, to train on them)"),
                highlight=False,
            )
            print_skip_rate(db)
