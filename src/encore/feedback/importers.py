"""Reading feedback exports and track lists into the store.

Two entry points, :func:`import_feedback` for listener events and :func:`import_tracks`
for the catalogue. Both follow one rule: a file that cannot be read as a whole (wrong
encoding, a required column missing) raises :class:`~encore.exceptions.FeedbackDataError`
with the fix; a single bad row is quarantined (file, line, reason, raw text) and the
rest goes in. Every quarantined row is also written to the store's ``quarantine`` table.

Canonical event columns: ``track_id``, ``listener_id`` (optional), ``kind``, ``value``,
``timestamp``, ``source`` (optional). ``mapping`` renames a file's columns onto them,
which the CLI spells ``--map canonical=column``.

Example:
    >>> report = import_feedback(store, "ratings.csv", mapping={"track_id": "song"})  # doctest: +SKIP
    >>> report.stored, report.quarantined                                            # doctest: +SKIP
    (9812, 3)
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.schema import EVENT_KINDS, QuarantinedRow
from encore.feedback.store import Store

__all__ = [
    "AUDIO_SUFFIXES",
    "CANONICAL_COLUMNS",
    "EVENT_KINDS",
    "FORMATS",
    "GEMS_EMOTIONS",
    "ImportReport",
    "QuarantinedRow",
    "import_feedback",
    "import_feedback_frame",
    "import_tracks",
    "read_emotify_annotations",
    "read_table",
]

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl", "parquet")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
CANONICAL_COLUMNS: tuple[str, ...] = ("track_id", "listener_id", "kind", "value", "timestamp", "source")
_REQUIRED_COLUMNS: tuple[str, ...] = ("track_id", "kind", "value", "timestamp")
AUDIO_SUFFIXES: frozenset[str] = frozenset(
    {".mp3", ".wav", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".mp4"}
)
GEMS_EMOTIONS: tuple[str, ...] = (
    "amazement", "solemnity", "tenderness", "nostalgia", "calmness",
    "power", "joyful_activation", "tension", "sadness",
)
"""The nine GEMS emotion columns of the Emotify annotations, in file order."""

_EPOCH_MS_THRESHOLD = 1e11
"""Numeric timestamps above this are taken as milliseconds since the epoch, below as
seconds (1e11 s is the year 5138; 1e11 ms is March 1973)."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        read: Data rows (or audio files) read, bad ones included.
        stored: Rows newly stored.
        duplicate: Rows already in the store (or repeated within the input).
        quarantined: Rows set aside; see ``quarantine``.
        quarantine: The set-aside rows with line, reason and raw text.
    """

    read: int
    stored: int
    duplicate: int
    quarantined: int
    quarantine: list[QuarantinedRow] = field(default_factory=list)


# -- reading files -----------------------------------------------------------------


@dataclass
class _Table:
    """A file read into strings, with what could not be parsed at all."""

    frame: pd.DataFrame  # index: 1-based line (row number for Parquet)
    raw: list[str] | None  # the text of each row, aligned with frame; None: rebuild from values
    rejects: list[QuarantinedRow]
    delimiter: str | None = None  # CSV/TSV: rebuild rows as delimited lines, else as JSON

    def raw_rows(self, positions: np.ndarray) -> list[str]:
        """The raw text of the rows at ``positions``."""
        if self.raw is not None:
            return [self.raw[i].rstrip("\r\n") for i in positions]
        rows = self.frame.iloc[positions]
        if self.delimiter is not None:
            return [_delimited_line(list(values), self.delimiter) for values in rows.fillna("").itertuples(index=False)]
        records = rows.to_dict(orient="records")
        return [json.dumps(record, default=str, ensure_ascii=False) for record in records]


def _detect_format(path: Path, format: str) -> str:
    if format != "auto":
        if format not in FORMATS:
            raise ParameterError(f"format={format!r} is not known; use one of {['auto', *FORMATS]}")
        return format
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    detected = _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if detected is None:
        raise ParameterError(
            f"cannot tell the format of {path.name!r} from its suffix; pass format= one of "
            f"{list(FORMATS)} (--format on the command line)"
        )
    return detected


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a byte-order mark is not part of the first column's name
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")  # type: ignore[return-value]
    return open(path, encoding=encoding, newline="")  # noqa: SIM115 - closed by the caller


def _delimited_line(fields: list[str], delimiter: str) -> str:
    """Fields written back as one CSV/TSV line (quoted where needed)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _read_delimited(path: Path, handle: io.TextIOBase, delimiter: str) -> _Table:
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise FeedbackDataError(f"{path}: the file is empty; a header row is expected")
    header = [name.strip() for name in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FeedbackDataError(f"{path}: repeated column name(s) {repeated} in the header; rename them")
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[QuarantinedRow] = []
    n_fields = len(header)
    previous = reader.line_num
    for record in reader:
        line = previous + 1  # a quoted field may span lines: a record starts after the last one
        previous = reader.line_num
        if len(record) == n_fields:
            rows.append(record)
            lines.append(line)
        elif record and (len(record) > 1 or record[0].strip()):  # not a blank line
            reason = f"expected {n_fields} fields, found {len(record)}"
            rejects.append(QuarantinedRow(str(path), line, reason, _delimited_line(record, delimiter)))
    frame = pd.DataFrame(rows, columns=header, dtype="str") if rows else pd.DataFrame(columns=header, dtype="str")
    frame = frame.replace("", np.nan)
    frame.index = pd.Index(lines, name="line", dtype="int64")
    return _Table(frame, None, rejects, delimiter)


def _read_jsonl(path: Path, handle: io.TextIOBase) -> _Table:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    raw: list[str] = []
    rejects: list[QuarantinedRow] = []
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            rejects.append(QuarantinedRow(str(path), line, f"not valid JSON ({error.msg})", text.rstrip("\r\n")))
            continue
        if not isinstance(record, dict):
            rejects.append(QuarantinedRow(str(path), line, "not a JSON object", text.rstrip("\r\n")))
            continue
        records.append({str(key).strip(): value for key, value in record.items()})
        lines.append(line)
        raw.append(text)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame.index = pd.Index(lines, name="line", dtype="int64")
    return _Table(frame, raw, rejects)


def _read(path: str | os.PathLike[str], format: str, encoding: str) -> _Table:
    path = Path(path)
    format = _detect_format(path, format)
    if not path.is_file():
        raise FeedbackDataError(f"{path}: no such file; check the path")
    if format == "parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise FeedbackDataError(f"{path}: cannot read as Parquet ({error}); check format=") from error
        frame.columns = [str(name).strip() for name in frame.columns]
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
        return _Table(frame, None, [])
    try:
        with _open_text(path, encoding) as handle:
            if format == "jsonl":
                return _read_jsonl(path, handle)
            return _read_delimited(path, handle, "\t" if format == "tsv" else ",")
    except UnicodeDecodeError as error:
        raise FeedbackDataError(
            f"{path}: not valid {encoding} text ({error.reason}); give the file's encoding, "
            "e.g. --encoding latin-1 (encoding='latin-1') or --encoding cp1252"
        ) from error
    except LookupError as error:
        raise ParameterError(f"encoding={encoding!r} is not a known text encoding; try 'utf-8' or 'latin-1'") from error
    except csv.Error as error:
        raise FeedbackDataError(f"{path}: malformed {format.upper()} ({error}); check quoting") from error


def read_table(
    path: str | os.PathLike[str], *, format: str = "auto", encoding: str = "utf-8",
) -> pd.DataFrame:
    """Reads a CSV, TSV, JSON-lines or Parquet file.

    CSV and TSV cells are read as strings (empty cells missing) and header names are
    stripped of surrounding spaces. Rows that cannot be parsed at all (wrong number of
    fields, invalid JSON) are left out with a warning; :func:`import_feedback`
    quarantines them instead.

    Args:
        path: The file; ``.gz`` compression is handled for the text formats.
        format: ``"auto"`` (from the suffix) or one of :data:`FORMATS`.
        encoding: Text encoding of CSV, TSV and JSON lines.

    Returns:
        The rows, indexed by their 1-based line in the file (the header is line 1; for
        Parquet, the row number).

    Raises:
        ParameterError: The format is unknown or cannot be told from the suffix.
        FeedbackDataError: The file is missing, empty, or not valid text in ``encoding``.
    """
    table = _read(path, format, encoding)
    if table.rejects:
        logger.warning(
            "%s: left out %d unparsable row(s), first on line %d: %s",
            path, len(table.rejects), table.rejects[0].line, table.rejects[0].reason,
        )
    return table.frame


# -- feedback events ---------------------------------------------------------------


def _resolve_columns(columns: list[str], mapping: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """Canonical name to the input's column, for every canonical column present."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(CANONICAL_COLUMNS))
    if unknown:
        raise ParameterError(
            f"mapping names {unknown}, which are not canonical columns; map onto "
            f"{list(CANONICAL_COLUMNS)}, e.g. --map track_id=song_id"
        )
    by_folded = {str(name).casefold(): name for name in columns}
    resolved: dict[str, str] = {}
    for canonical in CANONICAL_COLUMNS:
        if canonical in mapping:
            if mapping[canonical] not in columns:
                raise FeedbackDataError(
                    f"{where}: --map {canonical}={mapping[canonical]} names no column; "
                    f"columns found: {columns}"
                )
            resolved[canonical] = mapping[canonical]
        elif canonical in columns:
            resolved[canonical] = canonical
        elif canonical.casefold() in by_folded:
            resolved[canonical] = by_folded[canonical.casefold()]
    missing = [name for name in _REQUIRED_COLUMNS if name not in resolved]
    if missing:
        fixes = " ".join(f"--map {name}=<column>" for name in missing)
        raise FeedbackDataError(
            f"{where}: required column(s) {missing} not found; columns found: {columns}. "
            f"Map the file's columns onto them with {fixes} (mapping={{'{missing[0]}': '<column>'}})"
        )
    return resolved


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped strings, empty ones missing; whole floats lose their ".0"
    (JSON and Parquet integers become floats when a value is missing)."""
    if pd.api.types.is_float_dtype(values.dtype) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("str").str.strip().replace("", np.nan)


def _combine_reasons(index: pd.Index, checks: list[tuple[pd.Series, pd.Series | str]]) -> pd.Series:
    """Per row, the reasons of every failed check joined with "; " ("" when all pass)."""
    reasons = pd.Series("", index=index, dtype="str")
    for mask, reason in checks:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            reason_values = reason[mask] if isinstance(reason, pd.Series) else reason
            reasons[mask] = reasons[mask].where(reasons[mask] == "", reasons[mask] + "; ") + reason_values
    return reasons


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """Timestamps to UTC; NaT where unparsable.

    ISO 8601 first (naive times are UTC), then other date formats pandas recognises,
    then numbers as epoch seconds, or milliseconds above :data:`_EPOCH_MS_THRESHOLD`.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    text = _as_text(values)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").astype("datetime64[us, UTC]")
    rest = parsed.isna() & text.notna()
    if not rest.any():
        return parsed
    numbers = pd.to_numeric(text.where(rest), errors="coerce")
    is_number = numbers.notna() & np.isfinite(numbers)
    millis = is_number & (numbers.abs() >= _EPOCH_MS_THRESHOLD)
    for mask, unit in ((is_number & ~millis, "s"), (millis, "ms")):
        if mask.any():
            epoch = pd.to_datetime(numbers[mask], unit=unit, utc=True, errors="coerce")
            parsed[mask] = epoch.dt.round("us")  # float seconds are not exact
    other = rest & ~is_number
    if other.any():
        parsed[other] = pd.to_datetime(text[other], utc=True, errors="coerce", format="mixed")
    return parsed


def _validate_events(
    frame: pd.DataFrame, columns: dict[str, str], known_tracks: set[str], default_source: str,
) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical events from the input and, per row, why it is bad ("" when good)."""
    def text(name: str) -> pd.Series:
        if name not in columns:
            return pd.Series(np.nan, index=frame.index, dtype="str")
        return _as_text(frame[columns[name]])

    track_id, kind, value = text("track_id"), text("kind").str.lower(), text("value")
    timestamp = _parse_timestamps(frame[columns["timestamp"]])
    number = pd.to_numeric(value, errors="coerce")
    finite = number.notna() & np.isfinite(number)

    checks: list[tuple[pd.Series, pd.Series | str]] = [
        (track_id.isna(), "missing track_id"),
        (
            track_id.notna() & ~track_id.isin(known_tracks),
            "unknown track_id '" + track_id.fillna("") + "' (not in the store; add it with import_tracks)",
        ),
        (
            ~kind.isin(EVENT_KINDS),
            "unknown kind '" + kind.fillna("<missing>") + f"' (expected one of {', '.join(EVENT_KINDS)})",
        ),
        (
            timestamp.isna(),
            "unparsable timestamp '" + text("timestamp").fillna("") + "' (use ISO 8601, e.g. 2024-05-01T12:00:00Z)",
        ),
        (
            (kind == "rating") & ~(finite & number.between(1, 5) & ((number * 2) % 1 == 0)),
            "rating '" + value.fillna("") + "' is not a number of stars in 1..5 (half stars allowed)",
        ),
        (
            kind.isin(["play", "skip"]) & ~(finite & (number >= 0)),
            kind.fillna("") + " value '" + value.fillna("") + "' is not a non-negative number of milliseconds",
        ),
        ((kind == "tag") & value.isna(), "empty tag text"),
    ]
    reasons = _combine_reasons(frame.index, checks)

    source = text("source").fillna(default_source)
    events = pd.DataFrame(
        {
            "track_id": track_id,
            "listener_id": text("listener_id"),
            "kind": kind,
            "value_num": number.where(kind.isin(["rating", "play", "skip"]), np.nan).where(
                ~kind.isin(["like", "dislike"]), 1.0
            ),
            "value_text": value.where(kind == "tag"),
            "timestamp": timestamp,
            "source": source,
        },
        index=frame.index,
    )
    return events, reasons


def _quarantine(table: _Table, where: str, lines: pd.Index, reasons: pd.Series, bad: np.ndarray) -> list[QuarantinedRow]:
    """The table's unparsable rows plus the rows whose reason is non-empty, by line."""
    quarantine = list(table.rejects)
    if bad.any():
        positions = np.flatnonzero(bad)
        raws = table.raw_rows(positions)
        quarantine += [
            QuarantinedRow(where, int(line), reason, raw)
            for line, reason, raw in zip(lines[positions], reasons.iloc[positions], raws)
        ]
        quarantine.sort(key=lambda row: row.line)
    return quarantine


def _finish_import(
    store: Store, read: int, stored: int, duplicate: int, quarantine: list[QuarantinedRow]
) -> ImportReport:
    """Record the quarantined rows and count what happened."""
    store.add_quarantine(quarantine)
    return ImportReport(
        read=read, stored=stored, duplicate=duplicate, quarantined=len(quarantine), quarantine=quarantine
    )


def _import_table(
    store: Store, table: _Table, where: str, mapping: Mapping[str, str] | None, source: str,
) -> ImportReport:
    frame = table.frame
    columns = _resolve_columns([str(name) for name in frame.columns], mapping, where)
    known_tracks = set(store.tracks()["track_id"])
    events, reasons = _validate_events(frame, columns, known_tracks, source)
    bad = (reasons != "").to_numpy()
    quarantine = _quarantine(table, where, frame.index, reasons, bad)
    stored, duplicate = store.add_events(events[~bad])
    report = _finish_import(store, len(frame) + len(table.rejects), stored, duplicate, quarantine)
    logger.info(
        "%s: read %d, stored %d, duplicate %d, quarantined %d",
        where, report.read, report.stored, report.duplicate, report.quarantined,
    )
    if quarantine:
        logger.warning("%s: first quarantined row, line %d: %s", where, quarantine[0].line, quarantine[0].reason)
    return report


def import_feedback(
    store: Store,
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    mapping: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    source: str | None = None,
) -> ImportReport:
    """Imports a file of listener events, quarantining bad rows.

    Per kind, ``value`` is: stars in 1..5 (half stars allowed) for ``rating``;
    milliseconds listened (>= 0) for ``play`` and ``skip``; the tag text for ``tag``
    (stored as given, stripped; normalised later by :mod:`encore.feedback.tags`);
    ignored for ``like`` and ``dislike``. Timestamps are ISO 8601 (naive means UTC) or
    epoch seconds/milliseconds. Importing the same file again stores nothing new.

    Args:
        store: Store to write to; the tracks must already be in it.
        path: CSV, TSV, JSON-lines or Parquet file.
        format: ``"auto"`` (from the suffix) or one of :data:`FORMATS`.
        mapping: Canonical column name to the file's column name, e.g.
            ``{"track_id": "song", "timestamp": "ts"}``.
        encoding: Text encoding of CSV, TSV and JSON lines.
        source: Source name for rows without a ``source`` value; the file name by default.

    Returns:
        Counts of read, stored, duplicate and quarantined rows, and the quarantined rows.

    Raises:
        ParameterError: Unknown format or mapping key.
        FeedbackDataError: The file cannot be read, or a required column is missing.
    """
    table = _read(path, format, encoding)
    return _import_table(store, table, str(path), mapping, source or Path(path).name)


def import_feedback_frame(
    store: Store,
    events: pd.DataFrame,
    *,
    name: str = "<frame>",
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
) -> ImportReport:
    """Imports events already in memory (e.g. from :func:`read_emotify_annotations`).

    Validation and quarantine are those of :func:`import_feedback`; line numbers are
    1-based row positions and the raw text is the row as JSON.

    Args:
        store: Store to write to; the tracks must already be in it.
        events: Canonical columns, or others named through ``mapping``.
        name: Stands in for the file name in quarantine records.
        mapping: Canonical column name to the frame's column name.
        source: Source name for rows without a ``source`` value; ``name`` by default.

    Returns:
        The import counts and quarantined rows.

    Raises:
        ParameterError: Unknown mapping key.
        FeedbackDataError: A required column is missing.
    """
    frame = events.reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
    return _import_table(store, _Table(frame, None, []), name, mapping, source or name)


def read_emotify_annotations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Converts the Emotify annotations file into canonical events.

    Each annotation row is one anonymous participant, ``listener_id`` ``emotify-<row>``
    (0-based data row), so agreement per song can still be computed. A row gives a
    ``like`` or ``dislike`` event when ``liked`` / ``disliked`` is 1 and a ``tag`` event
    per GEMS emotion column that is 1 (tag text = the column name). All events share a
    fixed timestamp (the Unix epoch) and source ``"emotify"``.

    Args:
        path: ``annotations.csv`` (header names after the first start with a space).

    Returns:
        Columns ``track_id``, ``listener_id``, ``kind``, ``value``, ``timestamp``,
        ``source``, ready for :func:`import_feedback_frame`.

    Raises:
        FeedbackDataError: The file lacks the expected columns.
    """
    frame = read_table(path, format="csv")
    expected = ["track id", "liked", "disliked", *GEMS_EMOTIONS]
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise FeedbackDataError(
            f"{path}: not an Emotify annotations file, column(s) {missing} missing; "
            f"columns found: {list(frame.columns)}"
        )
    track_ids = pd.to_numeric(frame["track id"], errors="coerce")
    if track_ids.isna().any():
        line = int(frame.index[track_ids.isna()][0])
        raise FeedbackDataError(f"{path}: line {line}: 'track id' is not a number")
    listener = [f"emotify-{row}" for row in range(len(frame))]
    base = pd.DataFrame(
        {"track_id": track_ids.astype("int64").astype("str").to_numpy(), "listener_id": listener}
    )
    parts = []
    for kind, column in (("like", "liked"), ("dislike", "disliked")):
        chosen = (pd.to_numeric(frame[column], errors="coerce") == 1).to_numpy()
        parts.append(base[chosen].assign(kind=kind, value="1", order=0))
    for order, emotion in enumerate(GEMS_EMOTIONS, start=1):
        chosen = (pd.to_numeric(frame[emotion], errors="coerce") == 1).to_numpy()
        parts.append(base[chosen].assign(kind="tag", value=emotion, order=order))
    events = pd.concat(parts)
    events["row"] = events.index
    events = events.sort_values(["row", "order"], kind="stable").drop(columns=["row", "order"])
    events["timestamp"] = pd.Timestamp(0, tz="UTC")
    events["source"] = "emotify"
    return events.reset_index(drop=True)[list(CANONICAL_COLUMNS)]


# -- tracks ------------------------------------------------------------------------


EMOTIFY_OFFSETS = {"classical": 0, "rock": 100, "electronic": 200, "pop": 300}


def read_emotify_tracks(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The Emotify audio layout ``root/audio/<genre>/<n>.mp3`` as a track list.

    Track ids are those of ``annotations.csv`` (``n`` plus 0, 100, 200 or 300 for
    classical, rock, electronic, pop), so the listener annotations link to the audio;
    the genre becomes the ``label``. Artists are not given by the dataset.

    Raises:
        FeedbackDataError: ``root/audio`` holds no ``<genre>/<n>.mp3`` files.
    """
    root = Path(root)
    rows = []
    for genre, offset in EMOTIFY_OFFSETS.items():
        for file in sorted((root / "audio" / genre).glob("*.mp3")):
            if file.stem.isdigit():
                rows.append({"track_id": str(int(file.stem) + offset), "path": str(file.resolve()),
                             "title": f"{genre} {file.stem}", "label": genre})
    if not rows:
        raise FeedbackDataError(f"{root}: no audio/<genre>/<n>.mp3 files; is this the Emotify folder?")
    return pd.DataFrame(rows)


def _stable_track_id(key: str, stem: str) -> str:
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
            "track_id": [_stable_track_id(_relative_key(path, root), path.stem) for path in files],
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
        return _as_text(frame[lookup[name]])

    paths = text("path")
    resolved = [
        None if pd.isna(raw) else str((base / Path(raw).expanduser()).resolve())
        for raw in paths
    ]
    exists = pd.Series([path is not None and os.path.isfile(path) for path in resolved], index=frame.index)
    track_id = text("track_id")
    generated = [
        _stable_track_id(_relative_key(Path(path), base), Path(path).stem) if path else None
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
    reasons = _combine_reasons(frame.index, checks)
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
        layout: ``auto`` (a track list or a folder, as above) or ``emotify`` (the
            Emotify folder, see :func:`read_emotify_tracks`; label set ``genre``).

    Returns:
        Counts of rows (files) read, tracks stored, already present, and quarantined
        rows (missing audio file, bad duration, repeated track id).

    Raises:
        FeedbackDataError: ``source`` does not exist, or the list lacks a ``path`` column.
    """
    source = Path(source)
    if layout not in ("auto", "emotify"):
        raise ParameterError(f"layout={layout!r} is not known; use 'auto' or 'emotify'")
    if layout == "emotify":
        frame = read_emotify_tracks(source)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
        table = _Table(frame, None, [])
        tracks, reasons = _validate_tracks(frame, source.resolve(), str(source))
        default_set = "genre"
    elif source.is_dir():
        tracks = _scan_folder(source)
        table = _Table(tracks, None, [])
        reasons = pd.Series("", index=tracks.index, dtype="str")
        default_set = "folder"
        if not len(tracks):
            logger.warning("%s: no audio files found (suffixes %s)", source, sorted(AUDIO_SUFFIXES))
    elif source.is_file():
        table = _read(source, "auto", "utf-8")
        tracks, reasons = _validate_tracks(table.frame, source.resolve().parent, str(source))
        default_set = "catalogue"
    else:
        raise FeedbackDataError(
            f"{source}: no such file or folder; give a track list (CSV) or a folder of audio files"
        )

    bad = (reasons != "").to_numpy()
    quarantine = _quarantine(table, str(source), tracks.index, reasons, bad)
    good = tracks[~bad]
    stored, present = store.add_tracks(good.drop(columns=["label"]))
    report = _finish_import(store, len(tracks) + len(table.rejects), stored, present, quarantine)

    labels = good.loc[good["label"].notna(), ["track_id", "label"]]
    if len(labels):
        _update_label_set(store, label_set or default_set, labels)
    logger.info(
        "%s: read %d, stored %d tracks, %d already present, quarantined %d",
        source, report.read, report.stored, report.duplicate, report.quarantined,
    )
    return report
