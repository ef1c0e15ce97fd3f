"""Importing songs: a track list (CSV, TSV, JSON lines, Parquet), a folder of audio
(flat, or one sub-folder per label), or a named dataset layout.

Bad rows (missing audio file, bad duration, repeated id) are quarantined while the
good ones go in; labels are written as a new version of a catalogue label set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers.emotify import read_emotify_tracks
from encore.feedback.importers.lastfm import read_lastfm_tracks
from encore.feedback.importers.spotify import read_spotify_tracks
from encore.feedback.importers.tables import (
    ImportReport,
    RawTable,
    as_text,
    combine_reasons,
    finish_import,
    quarantine_rows,
    read_raw,
)
from encore.feedback.store import Store

__all__ = ["AUDIO_SUFFIXES", "LAYOUTS", "import_tracks", "stable_track_id"]

logger = logging.getLogger(__name__)

LAYOUTS: tuple[str, ...] = ("auto", "emotify", "lastfm", "spotify")
"""Song sources :func:`import_tracks` knows: ``auto`` is a track list or an audio folder."""

AUDIO_SUFFIXES: frozenset[str] = frozenset(
    {".mp3", ".wav", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".mp4"}
)


def stable_track_id(key: str, stem: str) -> str:
    """``<slug of the stem>-<10 hex of SHA-1 of key>``: readable, and stable for a path."""
    slug = re.sub(r"[^0-9a-z]+", "-", stem.casefold()).strip("-")[:40] or "track"
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _relative_key(path: Path, base: Path) -> str:
    """``<base folder name>/<path relative to base>``, or the absolute path outside ``base``.

    Keeping the base's own name tells apart libraries with the same inner layout, and a
    track list beside its audio gives the same ids as scanning that folder.
    """
    try:
        return f"{base.name}/{path.relative_to(base).as_posix()}"
    except ValueError:
        return path.as_posix()


def _scan_folder(root: Path) -> pd.DataFrame:
    """Audio files under ``root`` as a track table, labelled when folder-per-label."""
    root = root.resolve()
    files = sorted(
        path for path in root.rglob("*")
        if path.suffix.lower() in AUDIO_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    relative = [path.relative_to(root) for path in files]
    per_label = bool(files) and all(len(rel.parts) == 2 for rel in relative)
    if not per_label and any(len(rel.parts) > 1 for rel in relative):
        logger.info(
            "%s: audio files at mixed depths; not a <label>/<file> layout, so no folder labels", root
        )
    frame = pd.DataFrame(
        {
            "track_id": [stable_track_id(_relative_key(path, root), path.stem) for path in files],
            "path": [str(path.resolve()) for path in files],
            "title": [rel.stem for rel in relative],
            "label": [rel.parts[0] if per_label else None for rel in relative],
        },
        index=pd.RangeIndex(1, len(files) + 1, name="line"),
        dtype=object,
    )
    return frame


def _validate_tracks(frame: pd.DataFrame, base: Path, where: str) -> tuple[pd.DataFrame, pd.Series]:
    """Resolved track rows and, per row, why it is bad ("" when good)."""
    lookup = {str(name).strip().casefold(): name for name in frame.columns}
    if "path" not in lookup:
        raise FeedbackDataError(
            f"{where}: required column 'path' not found; columns found: {list(frame.columns)}. "
            "Name the audio file column 'path' (track_id, artist, title, duration, label are optional)"
        )

    def text(name: str) -> pd.Series:
        if name not in lookup:
            return pd.Series(np.nan, index=frame.index, dtype="str")
        return as_text(frame[lookup[name]])

    paths = text("path")
    resolved = [
        None if pd.isna(raw) else str((base / Path(raw).expanduser()).resolve())
        for raw in paths
    ]
    exists = pd.Series([path is not None and os.path.isfile(path) for path in resolved], index=frame.index)
    track_id = text("track_id")
    generated = [
        stable_track_id(_relative_key(Path(path), base), Path(path).stem) if path else None
        for path in resolved
    ]
    track_id = track_id.fillna(pd.Series(generated, index=frame.index, dtype="str"))
    duration_text = text("duration")
    duration = pd.to_numeric(duration_text, errors="coerce")

    checks: list[tuple[pd.Series, pd.Series | str]] = [
        (paths.isna(), "missing path"),
        (paths.notna() & ~exists, "audio file not found: " + pd.Series(resolved, index=frame.index, dtype="str")),
        (
            duration_text.notna() & ~(duration.notna() & np.isfinite(duration) & (duration >= 0)),
            "duration '" + duration_text.fillna("") + "' is not a non-negative number of seconds",
        ),
    ]
    reasons = combine_reasons(frame.index, checks)
    # A repeated id is a problem only among rows that are otherwise fine.
    ok = reasons == ""
    first_line = pd.Series(frame.index, index=frame.index)[ok].groupby(track_id[ok]).transform("min")
    repeated = ok & track_id.where(ok).duplicated() & track_id.notna()
    reasons[repeated] = (
        "duplicate track_id '" + track_id[repeated] + "' (first on line " + first_line[repeated].astype("str") + ")"
    )
    tracks = pd.DataFrame(
        {
            "track_id": track_id,
            "path": pd.Series(resolved, index=frame.index, dtype=object),
            "artist": text("artist"),
            "title": text("title"),
            "duration": duration,
            "label": text("label"),
        }
    )
    return tracks, reasons


def _update_label_set(store: Store, name: str, labels: pd.DataFrame) -> None:
    """Writes a new version of a label set: the latest one with these tracks' labels
    replaced. Nothing is written when that equals the latest version."""
    latest = store.latest_version(name)
    previous = store.catalogue_labels(name, latest) if latest else pd.DataFrame(columns=["track_id", "label"])
    kept = previous[~previous["track_id"].isin(labels["track_id"])]
    merged = pd.concat([kept, labels.astype("str")], ignore_index=True)
    if set(map(tuple, merged.to_numpy())) == set(map(tuple, previous.to_numpy())):
        logger.info("label set %r: labels unchanged from version %d, no new version", name, latest)
        return
    store.add_catalogue_labels(name, merged)


def import_tracks(
    store: Store, source: str | os.PathLike[str], *, label_set: str | None = None, layout: str = "auto",
) -> ImportReport:
    """Adds tracks from a track list or a folder of audio files.

    A file (CSV, TSV, JSON lines, Parquet) needs a ``path`` column; ``track_id``,
    ``artist``, ``title``, ``duration`` (seconds) and ``label`` are optional. Relative
    paths are resolved against the file's folder and stored absolute; a missing
    ``track_id`` becomes a stable id from the file's stem and a hash of its path.
    Labels go into catalogue label set ``label_set`` (default ``"catalogue"``).

    A folder is scanned for audio files (:data:`AUDIO_SUFFIXES`, hidden files
    skipped). When every file sits at ``root/<label>/<file>``, the folder names are
    stored as label set ``label_set`` (default ``"folder"``); otherwise there are no
    labels. Track ids hash the folder's name and the path inside it, so moving the
    folder keeps them, and a track list beside the audio gives the same ids.

    Labels are written as a new version of the set: the latest version with the
    imported tracks' labels replaced (others carried over), and only when that differs
    from the latest version. Tracks already in the store keep their stored details.

    Args:
        store: Store to write to.
        source: Track list file or audio folder.
        label_set: Name of the label set to write labels into.
        layout: ``auto`` (a track list or a folder, as above), ``emotify`` (the
            Emotify folder, see :func:`read_emotify_tracks`; label set ``genre``),
            ``lastfm`` (the HetRec 2011 folder: one item per artist, no audio, see
            :mod:`encore.feedback.importers.lastfm`) or ``spotify`` (a streaming-history
            export: its distinct tracks, no audio, see
            :mod:`encore.feedback.importers.spotify`).

    Returns:
        Counts of rows (files) read, tracks stored, already present, and quarantined
        rows (missing audio file, bad duration, repeated track id).

    Raises:
        FeedbackDataError: ``source`` does not exist, or the list lacks a ``path`` column.
    """
    source = Path(source)
    if layout not in LAYOUTS:
        raise ParameterError(f"layout={layout!r} is not known; use one of {list(LAYOUTS)}")
    if layout in ("lastfm", "spotify"):
        reader = read_lastfm_tracks if layout == "lastfm" else read_spotify_tracks
        tracks = reader(source).assign(label=None, duration=np.nan)
        tracks.index = pd.RangeIndex(1, len(tracks) + 1, name="line")
        table = RawTable(tracks, None, [])
        reasons = pd.Series("", index=tracks.index, dtype="str")
        default_set = "catalogue"
    elif layout == "emotify":
        frame = read_emotify_tracks(source)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
        table = RawTable(frame, None, [])
        tracks, reasons = _validate_tracks(frame, source.resolve(), str(source))
        default_set = "genre"
    elif source.is_dir():
        tracks = _scan_folder(source)
        table = RawTable(tracks, None, [])
        reasons = pd.Series("", index=tracks.index, dtype="str")
        default_set = "folder"
        if not len(tracks):
            logger.warning("%s: no audio files found (suffixes %s)", source, sorted(AUDIO_SUFFIXES))
    elif source.is_file():
        table = read_raw(source, "auto", "utf-8")
        tracks, reasons = _validate_tracks(table.frame, source.resolve().parent, str(source))
        default_set = "catalogue"
    else:
        raise FeedbackDataError(
            f"{source}: no such file or folder; give a track list (CSV) or a folder of audio files"
        )

    bad = (reasons != "").to_numpy()
    quarantine = quarantine_rows(table, str(source), tracks.index, reasons, bad)
    good = tracks[~bad]
    stored, present = store.add_tracks(good.drop(columns=["label"]))
    report = finish_import(store, len(tracks) + len(table.rejects), stored, present, quarantine)

    labels = good.loc[good["label"].notna(), ["track_id", "label"]]
    if len(labels):
        _update_label_set(store, label_set or default_set, labels)
    logger.info(
        "%s: read %d, stored %d tracks, %d already present, quarantined %d",
        source, report.read, report.stored, report.duplicate, report.quarantined,
    )
    return report
