"""Bringing a store's database to the current schema with its Alembic migrations.

:func:`upgrade_store` is what :meth:`~encore.store.Store.open` runs: it upgrades
the database to the newest revision in :mod:`encore.store.migrations`. A database
made before migrations existed (by ``metadata.create_all``: the four first tables and
no ``alembic_version`` table) is stamped at revision ``0001``, which is that schema,
and upgraded from there. Concurrent openers wait for each other: PostgreSQL through an
advisory lock, SQLite through ``BEGIN IMMEDIATE``, and whoever comes second finds the
work done.

``encore store upgrade`` and ``encore store current`` are the command line. Plain
``alembic`` works too, with an ini file holding ``[alembic]`` and
``script_location = encore.store:migrations``, and the URL given as
``alembic -c that.ini -x url=sqlite:////abs/ws/encore.sqlite upgrade head``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from encore.exceptions import StoreError

__all__ = [
    "INITIAL_REVISION",
    "alembic_config",
    "current_revision",
    "head_revision",
    "store_revision",
    "upgrade_store",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
INITIAL_REVISION = "0001"
"""The revision equal to the schema ``metadata.create_all`` made before migrations."""
_INITIAL_TABLES = frozenset({"tracks", "catalogue_labels", "feedback_events", "quarantine"})
_PG_LOCK_KEY = 0x656E636F7265  # "encore": one advisory lock for every migration of a database


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision of the packaged migrations, e.g. ``"0002"``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}; the package is incomplete, reinstall encore")
    return head


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when it has never been migrated (or stamped)."""
    with engine.connect() as conn:
        return _revision(conn)


def _lock(conn: Connection) -> None:
    """Serialises migrations of one database across processes, until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_store(engine: Engine, *, revision: str = "head") -> tuple[str | None, str]:
    """Upgrades the database behind ``engine`` to ``revision`` in one transaction.

    Args:
        engine: Engine of a SQLite or PostgreSQL store.
        revision: Target revision; ``"head"`` (the newest) by default.

    Returns:
        ``(before, after)``: the revision found (None for an empty or pre-migration
        database) and the one the database is at now.

    Raises:
        StoreError: The database holds some but not all of the first schema's tables
            and no migration record (so it is not an encore store, or a broken one),
            or a migration fails.
    """
    safe = engine.url.render_as_string(hide_password=True)
    target = head_revision() if revision == "head" else revision
    try:
        if current_revision(engine) == target:
            return target, target
        with engine.connect() as conn:
            _lock(conn)
            before = _revision(conn)  # again under the lock: another process may have migrated
            config = alembic_config()
            config.attributes["connection"] = conn
            if before is None:
                found = _INITIAL_TABLES & set(inspect(conn).get_table_names())
                if found == _INITIAL_TABLES:
                    logger.info("%s: tables made before migrations; stamping revision %s", safe, INITIAL_REVISION)
                    command.stamp(config, INITIAL_REVISION)
                elif found:
                    raise StoreError(
                        f"store {safe!r} holds table(s) {sorted(found)} but not {sorted(_INITIAL_TABLES - found)} "
                        "and no alembic_version: it is not a complete encore store. Point the workspace at "
                        "an empty database, or drop those tables"
                    )
            if _revision(conn) != target:
                command.upgrade(config, target)
            after = _revision(conn)
            conn.commit()
    except SQLAlchemyError as error:
        raise StoreError(
            f"cannot migrate store {safe!r} to revision {target}: {error.__class__.__name__}: {error}. "
            "Check that the server is running and that the URL, user and database are right"
        ) from error
    if before != after:
        logger.info("store %s migrated from revision %s to %s", safe, before, after)
    return before, after or target


def store_revision(url: str) -> str | None:
    """The revision of the store at ``url`` without migrating it (None: never migrated).

    Raises:
        StoreError: The database cannot be reached.
    """
    from sqlalchemy import create_engine

    safe = url
    try:
        engine = create_engine(url)
        safe = engine.url.render_as_string(hide_password=True)
        try:
            return current_revision(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as error:
        raise StoreError(f"cannot read the revision of store {safe!r}: {error}") from error
