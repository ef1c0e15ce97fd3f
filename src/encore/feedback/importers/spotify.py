"""A Spotify streaming-history export: one listener's plays with milliseconds played.

Spotify's "download your data" gives ``StreamingHistory0.json``, ``StreamingHistory1.json``
... : JSON arrays of ``{"endTime": "YYYY-MM-DD HH:MM", "artistName", "trackName",
"msPlayed"}`` (UTC). There are no track ids and no track lengths, so:

- a track the store already holds with audio, under the same artist and title (compared
  ignoring case and runs of spaces; a folder import titles songs by their title tags),
  is that song: its plays go to it, so they become its appeal;
- any other track's id is derived from its artist and name, compared ignoring case and
  surrounding spaces: ``spotify-<slug>-<10 hex of SHA-1>`` (stable across exports);
- each entry is a ``play`` event with ``value`` = ``msPlayed``; a play shorter than the
  skip threshold (30 s by default, see :func:`~encore.targets.appeal.compute_appeal`)
  counts as a skip wherever rates are computed;
- the listener is ``spotify-<folder name>`` unless given;
- the event key hashes artist, track, end time, milliseconds and the occurrence number
  of identical entries, so re-importing an overlapping export stores nothing twice
  while two identical plays in one minute both count.

A quarantined entry's "line" is its 1-based position in its file's array.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from encore.exceptions import FeedbackDataError
from encore.feedback.importers.events import import_table
from encore.feedback.importers.tables import (
    ImportReport,
    RawTable,
    decode_text,
    quarantine_undecodable,
    merge_reports,
)
from encore.store.schema import QuarantinedRow
from encore.store import Store

__all__ = [
    "SpotifyImportReport",
    "import_spotify",
    "read_spotify_history",
    "read_spotify_tracks",
    "song_key",
    "spotify_track_id",
    "stored_song_keys",
]

logger = logging.getLogger(__name__)

FIELDS = ("endTime", "artistName", "trackName", "msPlayed")
SOURCE = "spotify"
_PATTERN = "StreamingHistory*.json"


def spotify_track_id(artist: str, track: str) -> str:
    """The stable track id of an artist and track name (case and outer spaces ignored)."""
    key = f"{artist.strip().casefold()}\x1f{track.strip().casefold()}"
    slug = re.sub(r"[^0-9a-z]+", "-", f"{artist} {track}".casefold()).strip("-")[:40] or "track"
    return f"spotify-{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def song_key(artist: str, title: str) -> tuple[str, str]:
    """An artist and title as compared across sources: case folded, runs of spaces made one, trimmed."""
    return tuple(" ".join(str(text).casefold().split()) for text in (artist, title))  # type: ignore[return-value]


def stored_song_keys(tracks: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The stored songs (``store.tracks()``) with audio and an artist and title, by :func:`song_key` (the
    first id of a repeated key)."""
    usable = tracks[tracks["path"].notna() & tracks["artist"].notna() & tracks["title"].notna()].sort_values("track_id")
    keys: dict[tuple[str, str], str] = {}
    for artist, title, track_id in zip(usable["artist"], usable["title"], usable["track_id"]):
        keys.setdefault(song_key(artist, title), track_id)
    return keys


def _files(path: str | os.PathLike[str]) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FeedbackDataError(f"{path}: no such file or folder; give a StreamingHistory*.json file or its folder")
    files = sorted(path.glob(_PATTERN), key=lambda p: (len(p.name), p.name))
    if not files:
        found = sorted(p.name for p in path.iterdir())[:10]
        raise FeedbackDataError(f"{path}: no {_PATTERN} files; found {found}")
    return files


def _read_entries(path: Path, encoding: str) -> tuple[pd.DataFrame, list[str], list[QuarantinedRow]]:
    """The file's entries as strings, indexed by 1-based position; malformed entries set aside."""
    try:
        entries = json.loads(decode_text(path.read_bytes(), encoding, str(path)))
    except json.JSONDecodeError as error:
        raise FeedbackDataError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}); is it a Spotify export?"
        ) from error
    if not isinstance(entries, list):
        raise FeedbackDataError(f"{path}: expected a JSON array of plays, found {type(entries).__name__}")
    rows, raw, positions, rejects = [], [], [], []
    for position, entry in enumerate(entries, start=1):
        text = json.dumps(entry, ensure_ascii=False)
        reject = quarantine_undecodable(text, encoding, str(path), position, hint="Spotify writes UTF-8")
        if reject is not None:  # a byte invalid in the encoding: this entry is set aside, the others go in
            rejects.append(reject)
            continue
        if not isinstance(entry, dict) or any(name not in entry for name in FIELDS):
            found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            rejects.append(QuarantinedRow(str(path), position, f"expected fields {list(FIELDS)}, found {found}", text))
            continue
        rows.append({name: entry[name] for name in FIELDS})
        raw.append(text)
        positions.append(position)
    frame = pd.DataFrame(rows, columns=list(FIELDS))
    frame.index = pd.Index(positions, name="line", dtype="int64")
    return frame, raw, rejects


def read_spotify_history(
    path: str | os.PathLike[str],
    *,
    listener_id: str | None = None,
    encoding: str = "utf-8",
    known: Mapping[tuple[str, str], str] | None = None,
) -> list[tuple[Path, RawTable]]:
    """Each export file as canonical ``play`` events (see the module docstring).

    Args:
        path: A ``StreamingHistory*.json`` file or the folder holding them.
        listener_id: The listener; ``spotify-<folder name>`` by default.
        encoding: Text encoding of the files.
        known: Stored songs by :func:`song_key` (:func:`stored_song_keys`): a play of one
            of them takes its track id. The event key stays the entry's own, so an entry
            is stored once whichever id it went to.

    Returns:
        Per file, its events (``track_id``, ``listener_id``, ``kind``, ``value``,
        ``timestamp``, ``source``, ``event_key``), indexed by position in the file.

    Raises:
        FeedbackDataError: No export file, or one that is not a JSON array.
    """
    files = _files(path)
    listener = listener_id or f"spotify-{files[0].resolve().parent.name}"
    tables = []
    occurrences: dict[tuple[str, ...], int] = {}
    for file in files:
        frame, raw, rejects = _read_entries(file, encoding)
        artist = frame["artistName"].astype("str").str.strip().fillna("")
        track = frame["trackName"].astype("str").str.strip().fillna("")
        end = frame["endTime"].astype("str").str.strip()
        played = frame["msPlayed"].astype("str").str.strip()
        track_ids, keys = [], []
        for a, t, e, m in zip(artist, track, end, played):
            own_id = spotify_track_id(a, t) if a and t else None
            track_id = (known or {}).get(song_key(a, t), own_id) if own_id else None
            identity = (own_id or "", e, m)
            occurrence = occurrences.get(identity, 0)
            occurrences[identity] = occurrence + 1
            track_ids.append(track_id)
            keys.append(hashlib.sha256(f"{SOURCE}\x1f{listener}\x1f{own_id}\x1f{e}\x1f{m}\x1f{occurrence}".encode()).hexdigest())
        events = pd.DataFrame(
            {
                "track_id": track_ids,
                "listener_id": listener,
                "kind": "play",
                "value": played.to_numpy(),
                "timestamp": end.to_numpy(),
                "source": SOURCE,
                "event_key": keys,
            },
            index=frame.index,
        )
        tables.append((file, RawTable(events, raw, rejects)))
    return tables


def read_spotify_tracks(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", known: Mapping[tuple[str, str], str] | None = None
) -> pd.DataFrame:
    """The distinct tracks of an export as catalogue rows, less those ``known`` holds (songs stored with audio,
    by :func:`song_key`: their plays go to them).

    Returns:
        Columns ``track_id``, ``artist``, ``title`` (first spelling seen), ``path``
        (empty: the export has no audio), one row per track id.

    Raises:
        FeedbackDataError: No export file, or one that is not a JSON array.
    """
    frames = [_read_entries(file, encoding)[0] for file in _files(path)]
    entries = pd.concat(frames, ignore_index=True)
    artist = entries["artistName"].astype("str").str.strip().fillna("")
    title = entries["trackName"].astype("str").str.strip().fillna("")
    usable = (artist != "") & (title != "")
    if known:
        keys = pd.Series([song_key(a, t) for a, t in zip(artist, title)], index=artist.index)
        stored = keys.isin(known.keys()) & usable
        logger.info("%d of the export's tracks are stored songs with audio", keys[stored].nunique())
        usable &= ~stored
    tracks = pd.DataFrame(
        {
            "track_id": [spotify_track_id(a, t) for a, t in zip(artist[usable], title[usable])],
            "artist": artist[usable].to_numpy(),
            "title": title[usable].to_numpy(),
        }
    ).drop_duplicates("track_id")
    tracks["path"] = None
    return tracks.reset_index(drop=True)


@dataclass
class SpotifyImportReport(ImportReport):
    """What a streaming-history import did.

    Attributes:
        matched: The stored songs with audio its plays went to.
        unknown_tracks: Tracks the store does not hold, whose plays were quarantined.
        unknown_plays: Those plays.
    """

    matched: int = 0
    unknown_tracks: int = 0
    unknown_plays: int = 0


def import_spotify(
    store: Store,
    path: str | os.PathLike[str],
    *,
    listener_id: str | None = None,
    encoding: str = "utf-8",
    progress: Callable[[int], None] | None = None,
) -> SpotifyImportReport:
    """Imports a streaming history. A play of a song the store holds with audio (same artist
    and title) goes to that song; the other tracks must be in the store first
    (``encore import FOLDER --layout spotify``), else their plays are quarantined as unknown.

    ``progress`` is called with the number of events written after each chunk.

    Returns:
        One report over all files; quarantined entries name their file and position.

    Raises:
        FeedbackDataError: No export file, or one that is not a JSON array.
    """
    tracks = store.tracks()
    known, held = stored_song_keys(tracks), set(tracks["track_id"])
    tables = read_spotify_history(path, listener_id=listener_id, encoding=encoding, known=known)
    reports = [import_table(store, table, str(file), None, SOURCE, progress) for file, table in tables]
    ids = pd.concat([table.frame["track_id"] for _, table in tables]).dropna()
    unknown = ids[~ids.isin(held)]
    return SpotifyImportReport(
        **vars(merge_reports(reports)),
        matched=int(ids[ids.isin(set(known.values()))].nunique()),
        unknown_tracks=int(unknown.nunique()),
        unknown_plays=len(unknown),
    )
