"""Last.fm HetRec 2011 (hetrec2011-lastfm-2k): listener tags and play counts on artists.

The dataset is artist-level: listeners tagged and played *artists*, not songs, and it
has no audio. Each artist becomes one catalogue item, track id ``lastfm-<artistID>``,
with ``artist`` its name from ``artists.dat`` (empty for the few artists that only
appear in the tag or play files) and no path, so tags turn into labels, agreement and
support exactly as for songs, and a label set learnt here can be attached to an
artist's songs later. Files (tab-separated, header row, no quoting):

- ``user_taggedartists.dat`` ``userID artistID tagID day month year``: one ``tag``
  event each, listener ``lastfm-<userID>``, tag text from ``tags.dat``, timestamp the
  given date (UTC midnight).
- ``tags.dat`` ``tagID tagValue``: **ISO-8859-1**, not UTF-8.
- ``user_artists.dat`` ``userID artistID weight``: one ``play_count`` event each
  (value = plays of that artist by that listener; no date is given, so the timestamp
  is the Unix epoch).
- ``artists.dat`` ``id name url pictureURL``.

Cantador, Brusilovsky and Kuflik, "2nd Workshop on Information Heterogeneity and Fusion
in Recommender Systems (HetRec 2011)", RecSys 2011.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from encore.exceptions import FeedbackDataError
from encore.feedback.importers.events import import_table
from encore.feedback.importers.tables import (
    ImportReport,
    RawTable,
    decode_text,
    merge_reports,
    quarantine_undecodable_lines,
)
from encore.store.schema import QuarantinedRow
from encore.store import Store

__all__ = [
    "LASTFM_FILES",
    "import_lastfm",
    "lastfm_track_id",
    "read_lastfm_play_counts",
    "read_lastfm_tags",
    "read_lastfm_tracks",
]

logger = logging.getLogger(__name__)

LASTFM_FILES = {
    "user_taggedartists.dat": ("userID", "artistID", "tagID", "day", "month", "year"),
    "tags.dat": ("tagID", "tagValue"),
    "user_artists.dat": ("userID", "artistID", "weight"),
    "artists.dat": ("id", "name"),
}
TAGS_ENCODING = "latin-1"
SOURCE = "lastfm"


def lastfm_track_id(artist_ids: pd.Series) -> pd.Series:
    """The store's track id of each Last.fm artist id: ``lastfm-<artistID>``."""
    return "lastfm-" + artist_ids.astype("str").str.strip()


def _root(path: str | os.PathLike[str]) -> Path:
    """The dataset folder, given it or any file in it."""
    path = Path(path)
    root = path.parent if path.is_file() else path
    if not root.is_dir():
        raise FeedbackDataError(f"{path}: no such folder; give the hetrec2011-lastfm-2k folder")
    return root


def _read_dat(path: Path, encoding: str) -> RawTable:
    """A HetRec ``.dat`` file as strings; rows with the wrong number of fields set aside."""
    expected = LASTFM_FILES[path.name]
    if not path.is_file():
        found = sorted(p.name for p in path.parent.glob("*.dat"))
        raise FeedbackDataError(f"{path}: missing; a HetRec Last.fm folder holds {list(LASTFM_FILES)}, found {found}")
    text, undecoded = quarantine_undecodable_lines(
        decode_text(path.read_bytes(), encoding, str(path)),
        encoding,
        str(path),
        header=True,
    )
    if undecoded and path.name == "tags.dat":  # a lookup table: a lost line would misname other files' rows
        raise FeedbackDataError(
            f"{path}: {len(undecoded)} line(s) not valid {encoding} text (first on line {undecoded[0].line}); "
            "tags.dat is ISO-8859-1 in the release: give --encoding latin-1"
        )
    lines = text.splitlines()
    header = [name.strip() for name in lines[0].split("\t")] if lines else []
    missing = [name for name in expected if name not in header]
    if missing:
        raise FeedbackDataError(
            f"{path}: column(s) {missing} not found; columns found: {header}. Is this the HetRec Last.fm file?"
        )
    rows, raw, numbers, rejects = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) == len(header):
            rows.append(fields)
            raw.append(line)
            numbers.append(number)
        elif line.strip():
            reason = f"expected {len(header)} tab-separated fields, found {len(fields)}"
            rejects.append(QuarantinedRow(str(path), number, reason, line))
    frame = pd.DataFrame(rows, columns=header, dtype="str").replace("", np.nan)
    frame.index = pd.Index(numbers, name="line", dtype="int64")
    return RawTable(frame, raw, sorted([*rejects, *undecoded], key=lambda row: row.line))


def read_lastfm_tags(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    tags_encoding: str = TAGS_ENCODING,
) -> RawTable:
    """The tag assignments as canonical ``tag`` events, one per row of ``user_taggedartists.dat``.

    Args:
        path: The dataset folder or a file in it.
        encoding: Encoding of ``user_taggedartists.dat``.
        tags_encoding: Encoding of ``tags.dat`` (ISO-8859-1 in the release).

    Returns:
        Events (``track_id``, ``listener_id``, ``kind``, ``value``, ``timestamp``,
        ``source``) indexed by line in ``user_taggedartists.dat``; rows naming a tag id
        missing from ``tags.dat`` are set aside with that reason.

    Raises:
        FeedbackDataError: A file is missing, lacks its columns, or is not valid text.
    """
    root = _root(path)
    table = _read_dat(root / "user_taggedartists.dat", encoding)
    assert table.raw is not None  # _read_dat keeps each row's text
    tags = _read_dat(root / "tags.dat", tags_encoding).frame
    names = pd.Series(tags["tagValue"].to_numpy(), index=tags["tagID"].str.strip().to_numpy())
    names = names[~names.index.duplicated()]
    frame = table.frame
    tag_ids = frame["tagID"].str.strip()
    known = tag_ids.isin(names.index).to_numpy()
    rejects = list(table.rejects)
    for position in np.flatnonzero(~known):
        line = int(frame.index[position])
        rejects.append(
            QuarantinedRow(
                str(root / "user_taggedartists.dat"),
                line,
                f"tagID {tag_ids.iloc[position]!r} not in tags.dat",
                table.raw[position],
            )
        )
    frame, tag_ids = frame[known], tag_ids[known]
    date = frame["year"].str.strip() + "-" + frame["month"].str.strip().str.zfill(2) + "-" + frame["day"].str.strip().str.zfill(2)
    events = pd.DataFrame(
        {
            "track_id": lastfm_track_id(frame["artistID"]),
            "listener_id": "lastfm-" + frame["userID"].str.strip(),
            "kind": "tag",
            "value": names.reindex(tag_ids.to_numpy()).to_numpy(),
            "timestamp": date,
            "source": SOURCE,
        },
        index=frame.index,
    )
    raw = [line for line, keep in zip(table.raw, known) if keep]
    return RawTable(events, raw, sorted(rejects, key=lambda row: row.line))


def read_lastfm_play_counts(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> RawTable:
    """The play counts as canonical ``play_count`` events, one per row of ``user_artists.dat``.

    Raises:
        FeedbackDataError: The file is missing, lacks its columns, or is not valid text.
    """
    table = _read_dat(_root(path) / "user_artists.dat", encoding)
    frame = table.frame
    events = pd.DataFrame(
        {
            "track_id": lastfm_track_id(frame["artistID"]),
            "listener_id": "lastfm-" + frame["userID"].str.strip(),
            "kind": "play_count",
            "value": frame["weight"].to_numpy(),
            "timestamp": "1970-01-01T00:00:00Z",
            "source": SOURCE,
        },
        index=frame.index,
    )
    return RawTable(events, table.raw, table.rejects)


def read_lastfm_tracks(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> pd.DataFrame:
    """Every artist of the dataset as a catalogue item (see the module docstring).

    Artists of ``artists.dat`` come first with their names; artists that only appear in
    the tag or play files follow with no name, so no event is left without its track.

    Returns:
        Columns ``track_id``, ``artist``, ``title`` (empty), ``path`` (empty).

    Raises:
        FeedbackDataError: A file is missing, lacks its columns, or is not valid text.
    """
    root = _root(path)
    artists = _read_dat(root / "artists.dat", encoding).frame
    named = pd.DataFrame(
        {"track_id": lastfm_track_id(artists["id"]).to_numpy(), "artist": artists["name"].str.strip().to_numpy()}
    )
    seen = pd.concat(
        [_read_dat(root / name, encoding).frame["artistID"] for name in ("user_taggedartists.dat", "user_artists.dat")]
    )
    extra = sorted(set(lastfm_track_id(seen.dropna())) - set(named["track_id"]), key=lambda t: int(t.split("-")[1]))
    if extra:
        logger.info("%s: %d artist(s) tagged or played but not in artists.dat; added without a name", root, len(extra))
    tracks = pd.concat([named, pd.DataFrame({"track_id": extra, "artist": None})], ignore_index=True)
    tracks["title"] = None
    tracks["path"] = None
    return tracks.drop_duplicates("track_id").reset_index(drop=True)


def import_lastfm(
    store: Store,
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    tags_encoding: str = TAGS_ENCODING,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Imports the tag assignments and play counts; the artists must be in the store
    (``encore import FOLDER --layout lastfm``).

    ``progress`` is called with the number of events written after each chunk.

    Returns:
        One report over both files; quarantined rows name their own file and line.

    Raises:
        FeedbackDataError: A file is missing, lacks its columns, or is not valid text.
    """
    root = _root(path)
    reports = [
        import_table(
            store,
            read_lastfm_tags(root, encoding=encoding, tags_encoding=tags_encoding),
            str(root / "user_taggedartists.dat"),
            None,
            SOURCE,
            progress,
        ),
        import_table(
            store, read_lastfm_play_counts(root, encoding=encoding), str(root / "user_artists.dat"), None, SOURCE, progress
        ),
    ]
    return merge_reports(reports)
