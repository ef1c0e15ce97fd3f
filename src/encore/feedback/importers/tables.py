"""Reading tabular files (CSV, TSV, JSON lines, Parquet) for the importers.

A file is read into strings with each row's 1-based line; rows that cannot be parsed at
all (wrong number of fields, invalid JSON) are kept aside as quarantined rows, so the
importers can report them with the rows that fail validation. What every import
reports (:class:`ImportReport`) and how quarantined rows are gathered live here too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pyarrow_csv

from encore.exceptions import FeedbackDataError, ParameterError
from encore.store.schema import QuarantinedRow
from encore.store import Store

__all__ = [
    "FORMATS",
    "ImportReport",
    "RawTable",
    "as_text",
    "combine_reasons",
    "decode_text",
    "quarantine_undecodable",
    "finish_import",
    "merge_reports",
    "quarantine_rows",
    "quarantine_undecodable_lines",
    "read_raw",
    "read_table",
    "resolve_columns",
    "restore_text",
    "undecodable",
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


def resolve_columns(
    columns: Sequence[str],
    mapping: Mapping[str, str] | None,
    where: str,
    canonical: Sequence[str],
    required: Sequence[str],
    *,
    fix: str = "",
) -> dict[str, str]:
    """Canonical name to the input's column, for every canonical column present.

    ``mapping`` (from ``--map canonical=column``) names a file's column for a canonical
    one; otherwise the canonical name itself is looked for, then in any case.

    Raises:
        ParameterError: ``mapping`` names a canonical column encore does not know.
        FeedbackDataError: ``mapping`` names a column the file lacks, or a required
            column is missing (``fix``, when given, ends that message).
    """
    columns = [str(name) for name in columns]
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(canonical))
    if unknown:
        raise ParameterError(
            f"--map names {', '.join(unknown)}, which encore does not know; map onto "
            f"{', '.join(canonical)}, e.g. --map {canonical[0]}=COLUMN"
        )
    by_folded = {name.strip().casefold(): name for name in columns}
    resolved: dict[str, str] = {}
    for name in canonical:
        if name in mapping:
            if mapping[name] not in columns:
                raise FeedbackDataError(
                    f"{where}: --map {name}={mapping[name]} names no column; columns found: {', '.join(columns)}"
                )
            resolved[name] = mapping[name]
        elif name in columns:
            resolved[name] = name
        elif name.casefold() in by_folded:
            resolved[name] = by_folded[name.casefold()]
    missing = [name for name in required if name not in resolved]
    if missing:
        fixes = fix or "Name the file's columns for them with " + " ".join(f"--map {name}=COLUMN" for name in missing)
        raise FeedbackDataError(
            f"{where}: required column(s) {', '.join(missing)} not found; columns found: {', '.join(columns)}. {fixes}"
        )
    return resolved


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
class RawTable:
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
            return [delimited_line(list(values), self.delimiter) for values in rows.fillna("").itertuples(index=False)]
        records = rows.to_dict(orient="records")
        return [json.dumps(record, default=str, ensure_ascii=False) for record in records]


def _detect_format(path: Path, format: str) -> str:
    if format != "auto":
        if format not in FORMATS:
            raise ParameterError(f"--format {format} is not known; use one of {', '.join(['auto', *FORMATS])}")
        return format
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    detected = _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if detected is None:
        raise ParameterError(
            f"cannot tell the format of {path.name!r} from its suffix; give it with --format, one of {', '.join(FORMATS)}"
        )
    return detected


MAX_UNDECODABLE_SHARE = 0.1
"""A text file with more than this share of its lines not valid in the encoding is
refused as a whole (the encoding is wrong); below it, those lines are quarantined."""
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that did not decode, as surrogateescape keeps them


def decode_text(data: bytes, encoding: str, where: str) -> str:
    """``data`` as text, with any byte invalid in ``encoding`` kept as a lone surrogate
    (``surrogateescape``) for :func:`undecodable` to find; a UTF-8 byte-order mark dropped.

    Raises:
        ParameterError: ``encoding`` is not a known text encoding.
        FeedbackDataError: The data cannot be decoded at all (e.g. UTF-16 cut short).
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError as error:
        raise ParameterError(f"--encoding {encoding} is not a known text encoding; try utf-8, latin-1 or cp1252") from error
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # a byte-order mark is not part of the first column's name
    try:
        return data.decode(codec, errors="surrogateescape")
    except UnicodeError as error:  # e.g. UTF-16 with an odd number of bytes
        raise FeedbackDataError(
            f"{where}: not valid {encoding} text ({getattr(error, 'reason', error)}); give the file's encoding, "
            "e.g. --encoding latin-1 or --encoding cp1252"
        ) from error


def undecodable(text: str, encoding: str) -> str | None:
    """Why ``text`` (from :func:`decode_text`) is not valid ``encoding`` text, or None when it is."""
    found = _UNDECODABLE.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    return f"not valid {encoding} text (byte 0x{byte:02x} at character {found.start() + 1})"


def quarantine_undecodable(text: str, encoding: str, where: str, line: int, *, hint: str = "") -> QuarantinedRow | None:
    """A quarantined row for ``text`` when it holds bytes invalid in ``encoding`` (reason, then ``hint``), else None."""
    reason = undecodable(text, encoding)
    if reason is None:
        return None
    return QuarantinedRow(where, line, f"{reason}; {hint}" if hint else reason, restore_text(text, encoding).rstrip("\r"))


def restore_text(text: str, encoding: str) -> str:
    """Text from :func:`decode_text` with each undecodable byte written as ``\\xNN`` (storable)."""
    if _UNDECODABLE.search(text) is None:
        return text
    return text.encode(encoding, errors="surrogateescape").decode(encoding, errors="backslashreplace")


def quarantine_undecodable_lines(
    text: str,
    encoding: str,
    where: str,
    *,
    header: bool,
) -> tuple[str, list[QuarantinedRow]]:
    """Set aside the lines of ``text`` that held bytes invalid in ``encoding``.

    Each such line is blanked (so every other line keeps its number) and returned as a
    quarantined row with its line number. When the header (``header=True``) or more than
    :data:`MAX_UNDECODABLE_SHARE` of the lines are affected, the encoding is wrong, and
    the whole file is refused with the count and the fix.

    Returns:
        The text with those lines blanked, and the quarantined rows.

    Raises:
        FeedbackDataError: The header or too many lines cannot be decoded.
    """
    if _UNDECODABLE.search(text) is None:
        return text, []
    lines = text.split("\n")
    rejects = []
    for number, line in enumerate(lines, start=1):
        reject = quarantine_undecodable(line, encoding, where, number)
        if reject is not None:
            rejects.append(reject)
            lines[number - 1] = ""
    n_lines = sum(1 for line in lines if line.strip()) + len(rejects)
    if (header and rejects[0].line == 1) or len(rejects) > max(1, MAX_UNDECODABLE_SHARE * n_lines):
        first = rejects[0]
        raise FeedbackDataError(
            f"{where}: {len(rejects)} of {n_lines} lines are not valid {encoding} text (first on line {first.line}: "
            f"{first.reason[first.reason.index('(') + 1 : first.reason.rindex(')')]}); give the file's encoding, "
            "e.g. --encoding latin-1 or --encoding cp1252"
        )
    logger.info("%s: %d line(s) not valid %s text set aside", where, len(rejects), encoding)
    return "\n".join(lines), rejects


def _read_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def delimited_line(fields: list[str], delimiter: str) -> str:
    """Fields written back as one CSV/TSV line (quoted where needed)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _read_simple_delimited(path: Path, text: str, delimiter: str) -> RawTable | None:
    """The fast path for the common file: no quotes, no blank lines, every line with the
    header's number of fields. Then line ``n`` of the file is data row ``n - 2`` and
    Arrow's CSV reader splits the fields about 10x faster than :mod:`csv`. Returns None
    for any other file, which then goes through :func:`_read_delimited`."""
    if '"' in text:
        return None
    # Only "\n" and "\r\n" end a line here (str.splitlines would also split on \x0b,
    # \x0c, \x1c-\x1e, \x85..., which a CSV reader keeps inside fields); a lone "\r"
    # goes to the careful path. The checks run on the whole text in C, not line by line.
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    body = text[:-1] if text.endswith("\n") else text
    n_lines = body.count("\n") + 1
    if n_lines < 2 or _BLANK_LINE.search(body):
        return None  # blank lines get the careful path's handling
    header = [name.strip() for name in body[: body.index("\n")].split(delimiter)]
    if len(set(header)) != len(header):
        return None  # repeated names too
    # A line with another number of fields makes Arrow raise (quoting is off): careful path.
    try:
        arrow = pyarrow_csv.read_csv(
            io.BytesIO(text.encode("utf-8", errors="surrogatepass")),
            read_options=pyarrow_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pyarrow_csv.ParseOptions(delimiter=delimiter, quote_char=False),
            convert_options=pyarrow_csv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeError):  # anything Arrow reads differently: the careful path decides
        return None
    if arrow.num_rows != n_lines - 1:
        return None
    frame = arrow.to_pandas().replace("", np.nan)
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return RawTable(frame, None, [], delimiter)


_BLANK_LINE = re.compile(r"^\s*$", re.MULTILINE)
"""A line of nothing or only whitespace (str.isspace's, as ``line.strip()`` sees it)."""


def _read_delimited(path: Path, handle: io.TextIOBase, delimiter: str) -> RawTable:
    """Reads a CSV/TSV row by row, setting aside rows with the wrong number of fields."""
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
            rejects.append(QuarantinedRow(str(path), line, reason, delimited_line(record, delimiter)))
    frame = pd.DataFrame(rows, columns=header, dtype="str") if rows else pd.DataFrame(columns=header, dtype="str")
    frame = frame.replace("", np.nan)
    frame.index = pd.Index(lines, name="line", dtype="int64")
    return RawTable(frame, None, rejects, delimiter)


def _read_jsonl(path: Path, handle: io.TextIOBase) -> RawTable:
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
    return RawTable(frame, raw, rejects)


def read_raw(path: str | os.PathLike[str], format: str, encoding: str) -> RawTable:
    path = Path(path)
    format = _detect_format(path, format)
    if not path.is_file():
        raise FeedbackDataError(f"{path}: no such file; check the path")
    if format == "parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise FeedbackDataError(f"{path}: cannot read as Parquet ({error}); check the file, or give its --format") from error
        frame.columns = [str(name).strip() for name in frame.columns]
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
        return RawTable(frame, None, [])
    try:
        data = _read_bytes(path)
    except (OSError, EOFError, zlib.error) as error:  # gzip: not gzip data, or cut short
        raise FeedbackDataError(
            f"{path}: cannot read the file ({error}); check that it is complete and, for .gz, really gzip-compressed"
        ) from error
    text, undecoded = quarantine_undecodable_lines(
        decode_text(data, encoding, str(path)),
        encoding,
        str(path),
        header=format != "jsonl",
    )
    try:
        if format == "jsonl":
            table = _read_jsonl(path, io.StringIO(text, newline=""))
        else:
            delimiter = "\t" if format == "tsv" else ","
            simple = _read_simple_delimited(path, text, delimiter)
            table = simple if simple is not None else _read_delimited(path, io.StringIO(text, newline=""), delimiter)
    except csv.Error as error:
        raise FeedbackDataError(f"{path}: malformed {format.upper()} ({error}); check quoting") from error
    if undecoded:
        table.rejects = sorted([*table.rejects, *undecoded], key=lambda row: row.line)
    return table


def read_table(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    encoding: str = "utf-8",
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
    table = read_raw(path, format, encoding)
    if table.rejects:
        logger.warning(
            "%s: left out %d unparsable row(s), first on line %d: %s",
            path,
            len(table.rejects),
            table.rejects[0].line,
            table.rejects[0].reason,
        )
    return table.frame


def as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped strings, empty ones missing; whole floats lose their ".0"
    (JSON and Parquet integers become floats when a value is missing)."""
    if pd.api.types.is_float_dtype(values.dtype) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("str").str.strip().replace("", np.nan)


Reason: TypeAlias = str | pd.Series | Callable[[pd.Series], pd.Series]
"""A check's reason: fixed text, text per row, or a function of the failing rows' mask
that builds their texts (so messages are only built for rows that fail)."""


def combine_reasons(index: pd.Index, checks: list[tuple[pd.Series, Reason]]) -> pd.Series:
    """Per row, the reasons of every failed check joined with "; " ("" when all pass)."""
    reasons = pd.Series("", index=index, dtype="str")
    for mask, reason in checks:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            if callable(reason):
                reason_values = reason(mask)
            else:
                reason_values = reason[mask] if isinstance(reason, pd.Series) else reason
            reasons[mask] = reasons[mask].where(reasons[mask] == "", reasons[mask] + "; ") + reason_values
    return reasons


def quarantine_rows(table: RawTable, where: str, lines: pd.Index, reasons: pd.Series, bad: np.ndarray) -> list[QuarantinedRow]:
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


def finish_import(store: Store, read: int, stored: int, duplicate: int, quarantine: list[QuarantinedRow]) -> ImportReport:
    """Record the quarantined rows and count what happened."""
    store.add_quarantine(quarantine)
    return ImportReport(read=read, stored=stored, duplicate=duplicate, quarantined=len(quarantine), quarantine=quarantine)


def merge_reports(reports: list[ImportReport]) -> ImportReport:
    """One report for an import made of several files (e.g. a folder of exports)."""
    return ImportReport(
        read=sum(report.read for report in reports),
        stored=sum(report.stored for report in reports),
        duplicate=sum(report.duplicate for report in reports),
        quarantined=sum(report.quarantined for report in reports),
        quarantine=[row for report in reports for row in report.quarantine],
    )
