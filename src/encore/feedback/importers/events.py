"""Importing listener events: column mapping, validation, quarantine, store.

Canonical event columns: ``track_id``, ``listener_id`` (optional), ``kind``, ``value``,
``timestamp``, ``source`` (optional). ``mapping`` renames a file's columns onto them,
which the CLI spells ``--map canonical=column``. A file that cannot be read as a whole
(wrong encoding, a required column missing) raises
:class:`~encore.exceptions.FeedbackDataError` with the fix; a single bad row is
quarantined (file, line, reason, raw text) and the rest goes in.

Example:
    >>> report = import_feedback(store, "ratings.csv", mapping={"track_id": "song"})  # doctest: +SKIP
    >>> report.stored, report.quarantined                                            # doctest: +SKIP
    (9812, 3)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers.tables import (
    ImportReport,
    RawTable,
    Reason,
    as_text,
    combine_reasons,
    finish_import,
    quarantine_rows,
    read_raw,
    resolve_columns,
)
from encore.store.schema import EVENT_KINDS
from encore.store import Store

__all__ = [
    "CANONICAL_COLUMNS",
    "MAX_CLOCK_SKEW",
    "MAX_PLAY_MS",
    "PLAY_SLACK_MS",
    "import_feedback",
    "import_feedback_frame",
    "import_table",
    "validate_events",
]

logger = logging.getLogger(__name__)

CANONICAL_COLUMNS: tuple[str, ...] = ("track_id", "listener_id", "kind", "value", "timestamp", "source", "event_key")
"""``listener_id``, ``source`` and ``event_key`` are optional; ``event_key`` (at most 64
characters) replaces the computed deduplication key, for exports that carry their own
event ids."""
_REQUIRED_COLUMNS: tuple[str, ...] = ("track_id", "kind", "value", "timestamp")
PLAY_UNITS = ("ms", "s")
"""Units a file's play and skip values may be given in (stored as milliseconds)."""
SECONDS_LIKE_SHARE = 0.9
"""Without a unit given, a file whose plays and skips are nearly all (this share, of 10 or more) under
a second is refused: it most likely counts seconds, and stored as milliseconds every play is a skip."""
MAX_CLOCK_SKEW = pd.Timedelta(minutes=15)
"""A timestamp may be this far ahead of this machine's clock (clocks differ); later is implausible."""
MAX_PLAY_MS = 4 * 3600 * 1000
"""The longest ``play`` or ``skip`` of a track whose duration is not in the store: 4 hours."""
PLAY_SLACK_MS = 10_000
"""How far a play may run past the track's stored duration (players count a little past the end)."""
_EPOCH_MS_THRESHOLD = 1e11
"""Numeric timestamps above this are taken as milliseconds since the epoch, below as
seconds (1e11 s is the year 5138; 1e11 ms is March 1973)."""


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """Timestamps to UTC; NaT where unparsable.

    ISO 8601 first (naive times are UTC), then other date formats pandas recognises,
    then numbers as epoch seconds, or milliseconds above :data:`_EPOCH_MS_THRESHOLD`.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    text = as_text(values)
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


def _either(values: pd.Series, present: str, empty: str) -> pd.Series:
    """``present`` with each value put in its ``{}``, or ``empty`` where the cell is empty
    (so a message never quotes ``''`` or ``'nan'``)."""
    filled = values.fillna("")
    return filled.map(present.format).where(values.notna(), empty).astype("str")


def _ahead(delta: pd.Series) -> pd.Series:
    """How far ahead a time is, in words: ``3.0 h``, ``8 days``, ``400 years``."""
    hours = delta.dt.total_seconds() / 3600
    words = hours.map(lambda h: f"{h / 8766:.0f} years" if h >= 8766 else f"{h / 24:.0f} days" if h >= 48 else f"{h:.1f} h")
    return words.astype("str")


def validate_events(
    frame: pd.DataFrame,
    columns: dict[str, str],
    known_tracks: Mapping[str, float] | set[str],
    default_source: str,
    *,
    now: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical events from rows of text and, per row, why it is bad.

    The validation every import (and the HTTP service) shares. Besides the form of each
    value it checks plausibility: a ``play`` or ``skip`` lasts at most the track's
    duration plus :data:`PLAY_SLACK_MS` (at most :data:`MAX_PLAY_MS` when the duration is
    unknown), and no timestamp is more than :data:`MAX_CLOCK_SKEW` in the future.

    Args:
        frame: The rows, indexed by line; cells as read (text, numbers or times).
        columns: Canonical column name to the frame's column (``track_id``, ``kind``,
            ``value``, ``timestamp`` needed; ``listener_id``, ``source``, ``event_key`` optional).
        known_tracks: Track ids in the store, with their durations in seconds (NaN when
            unknown; a plain set when none are known); other ids are bad.
        default_source: ``source`` for rows without one.
        now: The present, for the future check; this machine's clock by default.

    Returns:
        ``(events, reasons)``: the events as :meth:`~encore.store.Store.add_events`
        takes them, and per row the reasons it is bad joined by "; " ("" when good).
    """

    def text(name: str) -> pd.Series:
        if name not in columns:
            return pd.Series(np.nan, index=frame.index, dtype="str")
        return as_text(frame[columns[name]])

    track_id, kind, value = text("track_id"), text("kind").str.lower(), text("value")
    timestamp = _parse_timestamps(frame[columns["timestamp"]])
    number = pd.to_numeric(value, errors="coerce")
    finite = number.notna() & np.isfinite(number)
    durations = known_tracks if isinstance(known_tracks, Mapping) else dict.fromkeys(known_tracks, np.nan)
    duration_ms = track_id.map(durations).astype(float) * 1000
    longest_ms = (duration_ms + PLAY_SLACK_MS).fillna(MAX_PLAY_MS)
    ahead = timestamp - (pd.Timestamp.now(tz="UTC") if now is None else now)
    listened = kind.isin(["play", "skip"]) & finite & (number >= 0)

    checks: list[tuple[pd.Series, Reason]] = [
        (track_id.isna(), "missing track_id"),
        (
            track_id.notna() & ~track_id.isin(durations),
            lambda m: "unknown track_id '" + track_id[m] + "' (not in the store; add the song first with `encore import`)",
        ),
        (
            ~kind.isin(EVENT_KINDS),
            lambda m: _either(kind[m], "unknown kind '{}'", "kind is empty") + f" (expected one of {', '.join(EVENT_KINDS)})",
        ),
        (
            timestamp.isna(),
            lambda m: (
                _either(text("timestamp")[m], "unparsable timestamp '{}'", "timestamp is empty")
                + " (use ISO 8601, e.g. 2024-05-01T12:00:00Z)"
            ),
        ),
        (
            ahead > MAX_CLOCK_SKEW,
            lambda m: (
                "timestamp "
                + timestamp[m].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
                + " is "
                + _ahead(ahead[m])
                + f" in the future (at most {MAX_CLOCK_SKEW.total_seconds() / 60:.0f} min ahead of this machine's clock); "
                "check the clock, or the time zone of times written without one (they are read as UTC)"
            ),
        ),
        (
            (kind == "rating") & ~(finite & number.between(1, 5) & ((number * 2) % 1 == 0)),
            lambda m: (
                _either(value[m], "rating '{}' is not", "rating value is empty; give")
                + " a number of stars in 1..5 (half stars allowed)"
            ),
        ),
        (
            kind.isin(["play", "skip"]) & value.notna() & ~(finite & (number >= 0)),
            lambda m: kind[m] + " value '" + value[m] + "' is not a non-negative number of milliseconds",
        ),
        (
            listened & duration_ms.notna() & (number > longest_ms),
            lambda m: (
                kind[m]
                + " value "
                + value[m]
                + " ms is longer than the track ("
                + (duration_ms[m] / 1000).round(1).astype(str)
                + f" s; at most its duration plus {PLAY_SLACK_MS // 1000} s is counted); is the column in milliseconds?"
            ),
        ),
        (
            listened & duration_ms.isna() & (number > MAX_PLAY_MS),
            lambda m: (
                kind[m] + " value " + value[m] + f" ms is more than {MAX_PLAY_MS // 3_600_000} hours, the most "
                "counted for a track of unknown duration; is the column in milliseconds?"
            ),
        ),
        (
            (kind == "play_count") & ~(finite & (number >= 0) & (number % 1 == 0)),
            lambda m: (
                _either(value[m], "play_count '{}' is not", "play_count value is empty; give") + " a non-negative whole number"
            ),
        ),
        ((kind == "tag") & value.isna(), "empty tag text"),
        (text("event_key").str.len() > 64, "event_key longer than 64 characters"),
    ]
    reasons = combine_reasons(frame.index, checks)

    source = text("source").fillna(default_source)
    events = pd.DataFrame(
        {
            "track_id": track_id,
            "listener_id": text("listener_id"),
            "kind": kind,
            "value_num": number.where(kind.isin(["rating", "play", "skip", "play_count"]), np.nan).where(
                ~kind.isin(["like", "dislike"]), 1.0
            ),
            "value_text": value.where(kind == "tag"),
            "timestamp": timestamp,
            "source": source,
        },
        index=frame.index,
    )
    if "event_key" in columns:
        events["event_key"] = text("event_key")
    return events, reasons


def import_table(
    store: Store,
    table: RawTable,
    where: str,
    mapping: Mapping[str, str] | None,
    source: str,
    progress: Callable[[int], None] | None = None,
    play_unit: str | None = "ms",
) -> ImportReport:
    """Validates a read table, stores its good rows and quarantines the bad ones.

    ``progress`` is called with the number of events written after each chunk. ``play_unit``
    is the unit of play and skip values (:data:`PLAY_UNITS`); None checks that they do not
    look like seconds (:data:`SECONDS_LIKE_SHARE`) before anything is stored.
    """
    frame = table.frame
    columns = resolve_columns(frame.columns, mapping, where, CANONICAL_COLUMNS, _REQUIRED_COLUMNS)
    if play_unit != "ms":
        frame = _play_milliseconds(frame, columns, play_unit, where)
    events, reasons = validate_events(frame, columns, store.track_durations(), source)
    bad = (reasons != "").to_numpy()
    quarantine = quarantine_rows(table, where, frame.index, reasons, bad)
    stored, duplicate = store.add_events(events[~bad], progress=progress)
    report = finish_import(store, len(frame) + len(table.rejects), stored, duplicate, quarantine)
    logger.info(
        "%s: read %d, stored %d, duplicate %d, quarantined %d",
        where,
        report.read,
        report.stored,
        report.duplicate,
        report.quarantined,
    )
    if quarantine:  # the report lists them; a warning here would print the first one twice
        logger.debug("%s: first quarantined row, line %d: %s", where, quarantine[0].line, quarantine[0].reason)
    return report


def _play_milliseconds(frame: pd.DataFrame, columns: dict[str, str], unit: str | None, where: str) -> pd.DataFrame:
    """``frame`` with its play and skip values in milliseconds: converted from seconds (``unit`` "s"), or,
    with no unit given, refused when they look like seconds."""
    if unit not in (None, *PLAY_UNITS):
        raise ParameterError(f"play unit {unit!r} is unknown; use {' or '.join(PLAY_UNITS)}")
    kind = as_text(frame[columns["kind"]]).str.lower()
    number = pd.to_numeric(as_text(frame[columns["value"]]), errors="coerce")
    timed = kind.isin(["play", "skip"]) & number.notna() & np.isfinite(number) & (number >= 0)
    if unit == "s":
        converted = frame.copy()
        converted[columns["value"]] = converted[columns["value"]].astype(object)
        converted.loc[timed, columns["value"]] = (number[timed] * 1000.0).map("{:g}".format)
        return converted
    short = int((number[timed] < 1000).sum())
    if timed.sum() >= 10 and short >= SECONDS_LIKE_SHARE * timed.sum():
        raise FeedbackDataError(
            f"{where}: {short} of {int(timed.sum())} plays and skips last under a second, yet a play's value is "
            "milliseconds listened, so they look like seconds (stored as they are, every play would count as a "
            "skip). Import it with --play-unit s if the column counts seconds, or --play-unit ms if it really is "
            "milliseconds; nothing was stored"
        )
    return frame


def import_feedback(
    store: Store,
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    mapping: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
    play_unit: str | None = None,
) -> ImportReport:
    """Imports a file of listener events, quarantining bad rows.

    Per kind, ``value`` is: stars in 1..5 (half stars allowed) for ``rating``;
    milliseconds listened (>= 0; empty when unknown) for ``play`` and ``skip``; the tag text for ``tag``
    (stored as given, stripped; normalised later by :mod:`encore.targets.tags`);
    a whole number of plays for ``play_count``; ignored for ``like`` and ``dislike``.
    An optional ``event_key`` column replaces the computed deduplication key. Timestamps are ISO 8601 (naive means UTC) or
    epoch seconds/milliseconds. Importing the same file again stores nothing new.

    Args:
        store: Store to write to; the tracks must already be in it.
        path: CSV, TSV, JSON-lines or Parquet file.
        format: ``"auto"`` (from the suffix) or one of :data:`FORMATS`.
        mapping: Canonical column name to the file's column name, e.g.
            ``{"track_id": "song", "timestamp": "ts"}``.
        encoding: Text encoding of CSV, TSV and JSON lines.
        source: Source name for rows without a ``source`` value; the file name by default.
        progress: Called with the number of events written after each chunk.
        play_unit: ``"ms"`` or ``"s"``, the unit of play and skip values (stored as
            milliseconds); None refuses a file whose plays nearly all last under a second.

    Returns:
        Counts of read, stored, duplicate and quarantined rows, and the quarantined rows.

    Raises:
        ParameterError: Unknown format, mapping key or play unit.
        FeedbackDataError: The file cannot be read, a required column is missing, or (with
            no ``play_unit``) its plays look like seconds.
    """
    table = read_raw(path, format, encoding)
    return import_table(store, table, str(path), mapping, source or Path(path).name, progress, play_unit=play_unit)


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
    return import_table(store, RawTable(frame, None, []), name, mapping, source or name)
