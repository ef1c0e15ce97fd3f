"""Converting pandas columns to and from what the store's database drivers take.

Helpers of :mod:`encore.store.store` and :mod:`encore.store.predictions`: URL
handling, SQLite connection settings, text, number and UTC timestamp columns, and the
event deduplication key :func:`compute_event_keys`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from encore.exceptions import FeedbackDataError

__all__ = [
    "KEY_SEPARATOR",
    "compute_event_keys",
    "object_values",
    "python_floats",
    "require_columns",
    "resolve_url",
    "safe_url",
    "set_sqlite_pragmas",
    "sqlite_datetimes",
    "text_column",
    "to_utc",
]

KEY_SEPARATOR = "\x1f"


def resolve_url(url_or_path: str | os.PathLike[str]) -> str:
    """Turns a plain path into a ``sqlite:///`` URL and leaves URLs as they are."""
    if isinstance(url_or_path, os.PathLike) or "://" not in str(url_or_path):
        path = Path(url_or_path).expanduser().resolve()
        return f"sqlite:///{path.as_posix()}"
    return str(url_or_path)


def safe_url(url: str) -> str:
    """The URL with any password masked, for error messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    """Per SQLite connection: 16 KiB pages (new files), WAL (readers do not block the writer), foreign keys on,
    ``synchronous=NORMAL`` (safe with WAL) and a 64 MiB page cache, which keeps the
    ``event_key`` index in memory during bulk imports (about 1.5x faster)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA page_size=16384")  # new databases only: bulk inserts ~15 % faster than 4 KiB pages
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def object_values(values: pd.Series) -> np.ndarray:
    """Series values as an object array with every missing value (NaN, NaT, NA) as None."""
    return values.to_numpy(dtype=object, na_value=None)


def to_utc(values: pd.Series, what: str) -> pd.Series:
    """Parses timestamps to UTC at microsecond resolution; naive values are taken as UTC."""
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise FeedbackDataError(
            f"{what}: timestamps could not be parsed ({error}); give ISO 8601 times, "
            "e.g. 2024-05-01T12:00:00Z, or import through import_feedback, which "
            "quarantines bad rows"
        ) from error
    if parsed.isna().any():
        first = values[parsed.isna()].iloc[0]
        raise FeedbackDataError(f"{what}: missing timestamp ({first!r}); every event needs one")
    return parsed.dt.floor("us").dt.as_unit("us")


def text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as stripped strings (missing stays missing); an absent column is all missing."""
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="str")
    return frame[name].astype("str").str.strip()


def sqlite_datetimes(values: pd.Series) -> np.ndarray:
    """UTC timestamps as the text SQLAlchemy's SQLite ``DATETIME`` stores and reads back."""
    codes, uniques = pd.factorize(values)  # feedback exports repeat instants: format each once
    if not len(codes):
        return np.empty(0, dtype=object)
    naive = pd.DatetimeIndex(uniques).tz_convert("UTC").tz_localize(None).as_unit("us").to_numpy()
    text = np.datetime_as_string(naive, unit="us")  # fixed width: YYYY-MM-DDTHH:MM:SS.ffffff
    text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")  # the "T" becomes SQLAlchemy's space
    return np.asarray(text.tolist(), dtype=object)[codes]


def compute_event_keys(events: pd.DataFrame) -> list[str]:
    """The deduplication key of each event: SHA-256 of its normalised fields.

    The fields are ``track_id``, ``listener_id`` (empty when missing), ``kind``
    (lower-case), the value (``value_num`` as a float repr when present, else
    ``value_text``), the timestamp (UTC microseconds since the epoch) and ``source``.

    Args:
        events: Prepared events as :meth:`Store.add_events` builds them: stripped text
            columns and ``timestamp`` as UTC ``datetime64``.

    Returns:
        One 64-character hex digest per row, in row order.
    """
    value_num = events["value_num"].astype(float)
    codes, uniques = pd.factorize(value_num)  # values repeat (stars, likes): format each once
    reprs = np.asarray([repr(float(number)) for number in uniques] + [""], dtype=object)
    numbers = pa.array(reprs[codes], type=pa.string())
    values = pc.if_else(pa.array(value_num.notna().to_numpy()), numbers, _arrow_text(events["value_text"]))
    micros = pc.cast(pa.array(events["timestamp"].dt.as_unit("us").astype("int64").to_numpy()), pa.string())
    parts = [_arrow_text(events[name]) for name in ("track_id", "listener_id", "kind")]
    parts += [values, micros, _arrow_text(events["source"])]
    # Joined in Arrow (C++), encoded once; only the hashing is a Python loop.
    joined = pc.binary_join_element_wise(*parts, KEY_SEPARATOR).cast(pa.binary())
    sha256 = hashlib.sha256
    return [sha256(data).hexdigest() for data in joined.to_pylist()]


def _arrow_text(values: pd.Series) -> pa.Array:
    """A text column as an Arrow string array, missing values as empty strings."""
    return pc.fill_null(pa.array(values, type=pa.string(), from_pandas=True), "")


def python_floats(values: pd.Series) -> np.ndarray:
    """Numbers as an object array of Python floats, missing values as None."""
    return values.astype(float).to_numpy(dtype=object, na_value=None)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise FeedbackDataError(
            f"{what}: missing column(s) {missing}; found {list(frame.columns)}. Rename the columns to {list(columns)}"
        )
