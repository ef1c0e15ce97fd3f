"""One database behind the store: its engine, and bulk writes and reads over it.

:class:`Database` opens the SQLAlchemy engine on first use (SQLite in WAL mode with
foreign keys on, or PostgreSQL; anything else is refused) and migrates the schema
(:mod:`encore.store.migrate`). Its writes are the dialect's ``INSERT ... ON CONFLICT DO
NOTHING`` in chunks, one transaction per call; its reads return whole tables as frames.
:class:`~encore.store.Store` adds the tables' own methods on top.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TypeVar

import pandas as pd
from sqlalchemy import DateTime, Engine, Float, Integer, String, Table, create_engine, event, func, select, text, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from encore.exceptions import StoreError
from encore.store.dbvalues import safe_url, set_sqlite_pragmas, sqlite_datetimes
from encore.store.migrate import upgrade_store

__all__ = ["CHUNK_SIZE", "Database"]

logger = logging.getLogger(__name__)

_DatabaseT = TypeVar("_DatabaseT", bound="Database")

CHUNK_SIZE = 20_000
"""Rows per ``INSERT`` batch; large enough to amortise round trips, small enough to
keep one batch's parameters in memory comfortably."""

_PG_WRITE_LOCKS = {"tracks": 0x656E01, "catalogue_labels": 0x656E02, "feedback_events": 0x656E03}
"""PostgreSQL advisory lock keys that serialise bulk inserts per table (see _bulk_insert)."""


class Database:
    """One store database: the engine, made on first use, and bulk writes and reads.

    Args:
        url: SQLAlchemy database URL, e.g. ``sqlite:////abs/feedback.db`` or
            ``postgresql+psycopg://user@host:5432/db``.
    """

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created (and the schema migrated) on first use."""
        if self._engine is None:
            self._engine = self._connect()
        return self._engine

    def _connect(self) -> Engine:
        safe = safe_url(self.url)
        try:
            engine = create_engine(self.url, pool_pre_ping=True)
        except (ArgumentError, SQLAlchemyError, ImportError) as error:
            raise StoreError(
                f"cannot open store {safe!r}: {error}. Give a file path or a URL such as "
                "sqlite:///feedback.db or postgresql+psycopg://user@host:5432/db"
            ) from error
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", set_sqlite_pragmas)
        elif engine.dialect.name != "postgresql":
            engine.dispose()
            raise StoreError(
                f"cannot open store {safe!r}: dialect {engine.dialect.name!r} is not "
                "supported; use SQLite (a file path) or postgresql+psycopg://"
            )
        try:
            upgrade_store(engine)
        except StoreError:
            engine.dispose()
            raise
        logger.debug("opened feedback store %s", safe)
        return engine

    def close(self) -> None:
        """Releases the database connections; using the store again reconnects."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self: _DatabaseT) -> _DatabaseT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({safe_url(self.url)!r})"

    # -- writing ---------------------------------------------------------------

    def _insert_ignoring(self, table: Table, index_elements: Sequence[str]) -> Any:
        """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` for this dialect."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql  # one upsert API, typed apart
        return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))

    @staticmethod
    def _count(conn: Connection, table: Table) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def _bulk_insert(
        self,
        table: Table,
        index_elements: Sequence[str],
        columns: dict[str, Any],
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Inserts rows in chunks, skipping conflicts on ``index_elements``.

        Args:
            table: Target table.
            index_elements: Columns of the unique constraint that decides a duplicate.
            columns: Column name to equal-length values: object arrays (None for
                missing), for timestamps a UTC ``datetime64`` Series, or one aware
                ``datetime`` for every row.
            what: Name of the caller, for error messages.
            progress: Called with the number of rows written after each chunk.

        Returns:
            How many rows were stored.

        Raises:
            StoreError: The write fails; nothing of this call is stored then.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        n_rows = max(len(column) for column in columns.values() if not isinstance(column, datetime))
        if n_rows == 0:
            return 0
        values: dict[str, Any] = {}
        for name, column in columns.items():
            if isinstance(column, datetime):  # one value for every row, e.g. imported_at
                if sqlite:
                    column = sqlite_datetimes(pd.Series([pd.Timestamp(column)]))[0]
                column = itertools.repeat(column, n_rows)
            elif isinstance(column, pd.Series) and isinstance(column.dtype, pd.DatetimeTZDtype):
                column = sqlite_datetimes(column) if sqlite else column.dt.to_pydatetime()
            values[name] = column
        statement = self._insert_ignoring(table, index_elements)
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Concurrent writers of overlapping keys would otherwise lock them in
                    # different orders and deadlock; one bulk write per table at a time.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITE_LOCKS[table.name]})
                stored = self._execute_chunks(conn, statement, values, n_rows, progress)
        except IntegrityError as error:
            raise StoreError(
                f"the store at {safe_url(self.url)!r} refused {what} ({_reason(error)}): every track_id "
                "must already be in the tracks table, so add the tracks first (`encore import`); "
                "nothing of this write was stored"
            ) from error
        except SQLAlchemyError as error:
            raise self._failure("write", what, error) from error
        return stored

    def _execute_chunks(
        self,
        conn: Connection,
        statement: Any,
        values: dict[str, Any],
        n_rows: int,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Runs an ``INSERT ... ON CONFLICT DO NOTHING`` over all rows; how many went in.

        Counting uses this connection's own changes (SQLite ``total_changes()``,
        PostgreSQL ``RETURNING``), so concurrent writers never skew it and no table is
        scanned.
        """
        if conn.dialect.name == "sqlite":
            # The compiled dialect statement straight to the driver's executemany: the
            # values are already in SQLite's storage form, and skipping SQLAlchemy's
            # per-row parameter processing makes this ~3x faster.
            before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
            compiled = statement.compile(dialect=conn.dialect, column_keys=list(values))
            rows: list[Any] = list(zip(*(values[name] for name in compiled.positiontup)))
            for start in range(0, n_rows, CHUNK_SIZE):
                conn.exec_driver_sql(compiled.string, rows[start : start + CHUNK_SIZE])
                if progress is not None:
                    progress(len(rows[start : start + CHUNK_SIZE]))
            return int(conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before)
        names = list(values)
        records = [dict(zip(names, row)) for row in zip(*values.values())]
        returning = statement.returning(statement.table.primary_key.columns.values()[0])
        stored = 0
        for start in range(0, n_rows, CHUNK_SIZE):
            stored += len(conn.execute(returning, records[start : start + CHUNK_SIZE]).all())
            if progress is not None:
                progress(len(records[start : start + CHUNK_SIZE]))
        return stored

    # -- reading ---------------------------------------------------------------

    @contextmanager
    def _connected(self, doing: Literal["read", "write"], what: str) -> Iterator[Connection]:
        """A connection (a transaction for a write) whose database errors become one
        StoreError saying what was being read or written (see :meth:`_failure`)."""
        try:
            with self.engine.connect() if doing == "read" else self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as error:
            raise self._failure(doing, what, error) from error

    def _read(self, statement: Any, what: str) -> list[Any]:
        with self._connected("read", what) as conn:
            return list(conn.execute(statement).all())

    def _failure(self, doing: Literal["read", "write"], what: str, error: SQLAlchemyError) -> StoreError:
        """The error for a database that failed to read or write ``what`` (words, e.g. "the
        tracks"): the store's URL without its password and the database's own reason, with
        no SQL or library trace."""
        where = f"{'from' if doing == 'read' else 'to'} the store at {safe_url(self.url)!r}"
        kept = "" if doing == "read" else "; nothing of this write was stored"
        return StoreError(
            f"cannot {doing} {what} {where}: {_reason(error)}{kept}. "
            "Check that the database is running and reachable, then try again"
        )

    def _read_frame(self, table: Table, columns: Sequence[str], what: str, where: Any = None) -> pd.DataFrame:
        """Columns of ``table`` (rows ordered by its first primary-key column) as a frame.

        Timestamps come back as UTC ``datetime64``. On SQLite they are read as the
        stored text and parsed in one vectorised call, as SQLAlchemy's per-row
        ``DATETIME`` parsing would dominate reading millions of events.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        selected = [
            type_coerce(table.c[name], String) if sqlite and isinstance(table.c[name].type, DateTime) else table.c[name]
            for name in columns
        ]
        statement = select(*selected).order_by(next(iter(table.primary_key.columns)))
        if where is not None:
            statement = statement.where(where)
        rows = self._read(statement, what)
        values = list(zip(*rows)) if rows else [() for _ in columns]
        frame = pd.DataFrame({name: pd.Series(list(column), dtype=object) for name, column in zip(columns, values)})
        for name in columns:
            if isinstance(table.c[name].type, DateTime):
                frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
            elif isinstance(table.c[name].type, Float):
                frame[name] = frame[name].astype(float)
            elif isinstance(table.c[name].type, Integer):
                frame[name] = frame[name].astype("int64")
            else:
                frame[name] = frame[name].astype("str")
        return frame


def _reason(error: SQLAlchemyError) -> str:
    """The database's own message for ``error``, first line only (no SQL, no parameters, no link)."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else "no reason given by the database"
