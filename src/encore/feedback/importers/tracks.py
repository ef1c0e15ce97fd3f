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
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from encore.audio.files import AUDIO_EXTENSIONS, find_audio_files
from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers.emotify import read_emotify_tracks
from encore.feedback.importers.lastfm import read_lastfm_tracks
from encore.feedback.importers.spotify import read_spotify_tracks, stored_song_keys
from encore.feedback.importers.tables import (
    ImportReport,
    RawTable,
    as_text,
    combine_reasons,
    finish_import,
    quarantine_rows,
    read_raw,
    resolve_columns,
)
from encore.store import Store

__all__ = [
    "AUDIO_SUFFIXES",
    "LAYOUTS",
    "TrackImportReport",
    "import_tracks",
    "read_artist_tag",
    "read_tags",
    "stable_track_id",
]

logger = logging.getLogger(__name__)

LAYOUTS: tuple[str, ...] = ("auto", "emotify", "lastfm", "spotify")
"""Song sources :func:`import_tracks` knows: ``auto`` is a track list or an audio folder."""

AUDIO_SUFFIXES = AUDIO_EXTENSIONS
"""The audio file endings a folder import takes (:data:`encore.audio.files.AUDIO_EXTENSIONS`)."""


TRACK_COLUMNS: tuple[str, ...] = ("path", "track_id", "artist", "title", "duration", "label")
"""A track list's columns: ``path`` is required (or made by ``path_format``), the rest optional."""


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
    files = find_audio_files(root)
    relative = [path.relative_to(root) for path in files]
    per_label = bool(files) and all(len(rel.parts) == 2 for rel in relative)
    if not per_label and any(len(rel.parts) > 1 for rel in relative):
        logger.info("%s: audio files at mixed depths; not a <label>/<file> layout, so no folder labels", root)
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


def _format_paths(frame: pd.DataFrame, template: str, where: str) -> tuple[pd.Series, pd.Series]:
    """Each row's path from ``template``'s ``{column}`` fields, and why a row has none."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ParameterError(f"--path-format {template!r} is not a valid template ({error}); e.g. 'audio/{{label}}/{{id}}.mp3'")
    columns = [str(name) for name in frame.columns]
    by_folded = {name.strip().casefold(): name for name in columns}
    lookup = {}
    for name in fields:
        column = name if name in columns else by_folded.get(name.strip().casefold())
        if not name or column is None:
            raise FeedbackDataError(
                f"{where}: --path-format {template!r} names column {name!r}, which the file does not have; "
                f"columns found: {', '.join(columns)}"
            )
        lookup[name] = column
    values = {name: as_text(frame[column]) for name, column in lookup.items()}
    paths: list[str | None] = []
    reasons: list[str] = []
    for line in frame.index:
        row = {name: values[name][line] for name in lookup}
        empty = [lookup[name] for name, value in row.items() if pd.isna(value)]
        if empty:
            paths.append(None)
            reasons.append(f"--path-format: no value in column {', '.join(sorted(set(empty)))}")
            continue
        try:
            paths.append(_format_row(template, row))
            reasons.append("")
        except (ValueError, TypeError) as error:
            paths.append(None)
            reasons.append(f"--path-format: {error}")
    return pd.Series(paths, index=frame.index, dtype="str"), pd.Series(reasons, index=frame.index, dtype="str")


def _format_row(template: str, row: dict[str, str]) -> str:
    """``template`` filled with a row's text; a field with a numeric format (``{id:05d}``) takes the number."""
    try:
        return template.format_map(row)
    except (ValueError, TypeError):
        numbers: dict[str, object] = {}
        for name, value in row.items():
            try:
                number = float(value)
                numbers[name] = int(number) if number.is_integer() else number
            except ValueError:
                numbers[name] = value
        return template.format_map(numbers)


def _validate_tracks(
    frame: pd.DataFrame,
    base: Path,
    where: str,
    stored_ids: dict[str, str] | None = None,
    mapping: Mapping[str, str] | None = None,
    path_format: str | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Resolved track rows and, per row, why it is bad ("" when good).

    ``mapping`` names the file's column for a canonical one (:data:`TRACK_COLUMNS`);
    ``path_format`` makes each row's path from its columns instead of a ``path`` column.
    A row without a ``track_id`` takes the id of the stored track with the same audio
    file (``stored_ids``: path to id), else a stable id made from its path.
    """
    if path_format is not None and mapping and "path" in mapping:
        raise ParameterError("give the audio path by --map path=COLUMN or by --path-format, not both")
    columns = resolve_columns(
        frame.columns,
        mapping,
        where,
        TRACK_COLUMNS,
        () if path_format is not None else ("path",),
        fix="Name the audio file column with --map path=COLUMN, or make each row's path from its columns with "
        "--path-format, e.g. --path-format 'audio/{genre}/{id}.mp3' "
        "(track_id, artist, title, duration, label are optional)",
    )

    def text(name: str) -> pd.Series:
        if name not in columns:
            return pd.Series(np.nan, index=frame.index, dtype="str")
        return as_text(frame[columns[name]])

    if path_format is not None:
        paths, format_reasons = _format_paths(frame, path_format, where)
    else:
        paths, format_reasons = text("path"), pd.Series("", index=frame.index, dtype="str")
    resolved = [None if pd.isna(raw) else str((base / Path(raw).expanduser()).resolve()) for raw in paths]
    exists = pd.Series([path is not None and os.path.isfile(path) for path in resolved], index=frame.index)
    track_id = text("track_id")
    stored_ids = stored_ids or {}
    generated = [
        (stored_ids.get(path) or stable_track_id(_relative_key(Path(path), base), Path(path).stem)) if path else None
        for path in resolved
    ]
    track_id = track_id.fillna(pd.Series(generated, index=frame.index, dtype="str"))
    duration_text = text("duration")
    duration = pd.to_numeric(duration_text, errors="coerce")

    checks: list[tuple[pd.Series, pd.Series | str]] = [
        (format_reasons != "", format_reasons),
        (paths.isna() & (format_reasons == ""), "missing path"),
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


@dataclass
class TrackImportReport(ImportReport):
    """What a song import did, with its labels and artists.

    Attributes:
        label_set: The label set the labels went into; None when the import had none.
        labelled: Songs of this import with a label.
        label_version: The version written, or the latest one when the labels were
            unchanged (no new version); 0 without labels.
        label_set_new_version: Whether a new version was written.
        artists_from_tags: Songs whose artist was read from the file's own tags
            (ID3, Vorbis comment, MP4) because the import gave none.
        artists_filled: Songs already stored without an artist that got one now.
        without_artist: Songs of this import left with no artist at all; each is its
            own group in the splits.
    """

    label_set: str | None = None
    labelled: int = 0
    label_version: int = 0
    label_set_new_version: bool = False
    artists_from_tags: int = 0
    artists_filled: int = 0
    without_artist: int = 0


ARTIST_TAGS: tuple[str, ...] = ("artist", "album_artist", "albumartist", "performer")
"""Container or stream metadata keys read for an artist, in order of preference (FFmpeg
names ID3 TPE1, Vorbis ARTIST and MP4 ©ART all ``artist``; TPE2 ``album_artist``)."""


TITLE_TAGS: tuple[str, ...] = ("title",)
"""Metadata keys read for a title (ID3 TIT2, Vorbis TITLE and MP4 ©nam are all ``title``)."""


def read_tags(path: str) -> dict[str, str]:
    """The artist and title named in an audio file's own tags (``{"artist": ..., "title": ...}``,
    each only when present; empty when the file has none or is not readable).

    Reads only the container header through PyAV (FFmpeg): the file's metadata first,
    then its first audio stream's (Ogg keeps Vorbis comments there).
    """
    import av  # lazily: only song imports without an artist column need it

    try:
        with av.open(path, mode="r", metadata_errors="replace") as container:
            sources = [container.metadata, *(stream.metadata for stream in container.streams.audio[:1])]
    except Exception as exc:  # noqa: BLE001 - any unreadable header means "no tag"; decoding reports it later
        logger.debug("%s: no tags read (%s)", path, exc)
        return {}

    def first(keys: tuple[str, ...]) -> str | None:
        for key in keys:
            for metadata in sources:
                value = next((v for k, v in metadata.items() if k.casefold() == key), None)
                if isinstance(value, str) and value.strip(" \x00"):
                    return value.strip(" \x00")
        return None

    found = {"artist": first(ARTIST_TAGS), "title": first(TITLE_TAGS)}
    return {name: value for name, value in found.items() if value is not None}


def read_artist_tag(path: str) -> str | None:
    """The artist named in an audio file's own tags, or None (no tag, or not readable): :func:`read_tags`."""
    return read_tags(path).get("artist")


def _fill_from_tags(tracks: pd.DataFrame, *, titles: bool) -> int:
    """Fills ``artist`` in place from each file's tags where it is missing, and with ``titles`` (a folder's
    songs, titled by their file names) the title from the same tags; returns how many artists were found."""
    missing = tracks["artist"].isna() & tracks["path"].notna()
    if not missing.any():
        return 0
    tags = pd.Series([read_tags(path) for path in tracks.loc[missing, "path"]], index=tracks.index[missing], dtype=object)
    artists = tags.map(lambda found: found.get("artist"))
    artists = artists[artists.notna()]
    tracks.loc[artists.index, "artist"] = artists.astype(str)
    if titles:
        named = tags.map(lambda found: found.get("title"))
        named = named[named.notna()]
        tracks.loc[named.index, "title"] = named.astype(str)
    logger.info("artist read from the files' tags for %d of %d songs without one", len(artists), int(missing.sum()))
    return len(artists)


def _update_label_set(store: Store, name: str, labels: pd.DataFrame) -> tuple[int, bool]:
    """Writes a new version of a label set: the latest one with these tracks' labels
    replaced. Nothing is written when that equals the latest version.

    Returns:
        ``(version, new)``: the version now latest, and whether it was written now.
    """
    latest = store.latest_version(name)
    previous = store.catalogue_labels(name, latest) if latest else pd.DataFrame(columns=["track_id", "label"])
    kept = previous[~previous["track_id"].isin(labels["track_id"])]
    merged = pd.concat([kept, labels.astype("str")], ignore_index=True)
    if set(map(tuple, merged.to_numpy())) == set(map(tuple, previous.to_numpy())):
        logger.info("label set %r: labels unchanged from version %d, no new version", name, latest)
        return latest, False
    store.add_catalogue_labels(name, merged)
    return store.latest_version(name), True


def import_tracks(
    store: Store,
    source: str | os.PathLike[str],
    *,
    label_set: str | None = None,
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
    path_format: str | None = None,
) -> TrackImportReport:
    """Adds tracks from a track list or a folder of audio files.

    A file (CSV, TSV, JSON lines, Parquet) needs a ``path`` column; ``track_id``,
    ``artist``, ``title``, ``duration`` (seconds) and ``label`` are optional. Relative
    paths are resolved against the file's folder and stored absolute; a missing
    ``track_id`` is that of the stored song with the same audio file, else a stable id
    from the file's stem and a hash of its path.
    ``mapping`` names the file's column for any of them (``{"label": "Quadrant"}``),
    and ``path_format`` makes each row's path from its columns instead of a ``path``
    column (``"audio/{Quadrant}/{Song}.mp3"``; a row with an empty field is quarantined).
    Labels go into catalogue label set ``label_set`` (default ``"catalogue"``).

    A folder is scanned for audio files (:data:`AUDIO_SUFFIXES`, hidden files
    skipped). When every file sits at ``root/<label>/<file>``, the folder names are
    stored as label set ``label_set`` (default ``"folder"``); otherwise there are no
    labels. Track ids hash the folder's name and the path inside it, so moving the
    folder keeps them, and a track list beside the audio gives the same ids.

    Labels are written as a new version of the set: the latest version with the
    imported tracks' labels replaced (others carried over), and only when that differs
    from the latest version. Tracks already in the store keep their stored details,
    except an artist they lack, which this import fills in.

    A song with no artist (no ``artist`` column or an empty cell, or a folder) gets the
    artist named in its file's own tags (:func:`read_artist_tag`); songs left without
    one are counted in the report, as each is its own group in artist-safe splits.

    Args:
        store: Store to write to.
        source: Track list file or audio folder.
        label_set: Name of the label set to write labels into.
        mapping: Canonical column (:data:`TRACK_COLUMNS`) to the list's column.
        path_format: Template of a row's audio path, ``{column}`` fields.
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
        ParameterError: ``mapping`` or ``path_format`` given for a folder or a named layout.
    """
    source = Path(source)
    if layout not in LAYOUTS:
        raise ParameterError(f"layout={layout!r} is not known; use one of {list(LAYOUTS)}")
    if (mapping or path_format is not None) and (layout != "auto" or source.is_dir()):
        option = "--map" if mapping else "--path-format"
        raise ParameterError(f"{option} is for a track list (a CSV, TSV, JSON lines or Parquet file), not a folder or --layout")
    if layout in ("lastfm", "spotify"):
        if layout == "lastfm":
            tracks = read_lastfm_tracks(source)
        else:  # a track the store holds with audio (same artist and title) is that song, not a second item
            tracks = read_spotify_tracks(source, known=stored_song_keys(store.tracks()))
        tracks = tracks.assign(label=None, duration=np.nan)
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
        stored = store.tracks()
        stored_ids = {p: t for p, t in zip(stored["path"], stored["track_id"]) if isinstance(p, str)}
        tracks, reasons = _validate_tracks(
            table.frame, source.resolve().parent, str(source), stored_ids, mapping=mapping, path_format=path_format
        )
        default_set = "catalogue"
    else:
        raise FeedbackDataError(f"{source}: no such file or folder; give a track list (CSV) or a folder of audio files")

    bad = (reasons != "").to_numpy()
    quarantine = quarantine_rows(table, str(source), tracks.index, reasons, bad)
    good = tracks[~bad].copy()
    if "artist" not in good.columns:
        good["artist"] = None
    good["artist"] = good["artist"].astype(object).where(good["artist"].notna(), None)
    # Stored songs keep their details, except an artist they lack: only songs that have
    # none, new or stored, get one from this import or from their own tags.
    stored_tracks = store.tracks()
    stored_artist = dict(zip(stored_tracks["track_id"], stored_tracks["artist"]))
    known = good["track_id"].isin(stored_artist.keys())
    lacking = ~known | good["track_id"].map(stored_artist).isna()
    rows = good.loc[lacking].copy()
    from_tags = _fill_from_tags(rows, titles=layout == "auto" and source.is_dir())
    good.loc[lacking, ["artist", "title"]] = rows[["artist", "title"]]
    stored, present = store.add_tracks(good.drop(columns=["label"]))
    filled = good.loc[known & lacking & good["artist"].notna(), ["track_id", "artist"]]
    if len(filled):
        store.fill_artists(filled)
        logger.info("artist filled in for %d stored songs that had none", len(filled))
    base = finish_import(store, len(tracks) + len(table.rejects), stored, present, quarantine)
    report = TrackImportReport(**vars(base))
    report.artists_from_tags = from_tags
    report.artists_filled = len(filled)
    report.without_artist = int(good.loc[lacking, "artist"].isna().sum())

    labels = good.loc[good["label"].notna(), ["track_id", "label"]]
    if len(labels):
        report.label_set = label_set or default_set
        report.labelled = int(labels["track_id"].nunique())
        report.label_version, report.label_set_new_version = _update_label_set(store, report.label_set, labels)
    logger.info(
        "%s: read %d, stored %d tracks, %d already present, quarantined %d",
        source,
        report.read,
        report.stored,
        report.duplicate,
        report.quarantined,
    )
    return report
