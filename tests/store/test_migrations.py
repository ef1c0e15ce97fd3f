"""Alembic migrations: the migrated schema equals schema.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from encore.exceptions import StoreError
from encore.store import schema
from encore.store.migrate import INITIAL_REVISION, alembic_config, current_revision, head_revision, upgrade_store
from encore.store import Store

_FIRST_TABLES = [schema.tracks, schema.catalogue_labels, schema.feedback_events, schema.quarantine]


def _schema_differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)


def test_migrated_schema_equals_schema_module(store):
    # Fails when someone edits schema.py without adding a migration (or the reverse).
    assert _schema_differences(store.engine) == []
    assert current_revision(store.engine) == head_revision()


def test_downgrade_to_base_and_up_again_ends_equal(store):
    config = alembic_config()
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        conn.commit()
    assert _schema_differences(store.engine) == []


def test_database_made_before_migrations_is_stamped_and_upgraded(store_url, tracks):
    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    engine = create_engine(url)
    schema.metadata.create_all(engine, tables=_FIRST_TABLES)  # what Store.open did before migrations
    with engine.begin() as conn:
        conn.execute(schema.tracks.insert(), [{"track_id": "old", "added_at": pd.Timestamp("2024-01-01", tz="UTC")}])
    assert current_revision(engine) is None
    with Store.open(store_url) as store:
        assert store.tracks()["track_id"].tolist() == ["old"]  # data kept
        assert store.predictions().empty  # new table there
        assert _schema_differences(store.engine) == []
    assert current_revision(engine) == head_revision()
    assert upgrade_store(engine) == (head_revision(), head_revision())  # nothing left to do
    engine.dispose()


def test_partial_foreign_schema_is_refused(tmp_path):
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE tracks (track_id TEXT PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"catalogue_labels.*not a complete encore store"):
        Store.open(path)


def test_stamped_initial_revision_upgrades_to_head(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert upgrade_store(engine, revision=INITIAL_REVISION) == (None, INITIAL_REVISION)
    assert "predictions" not in inspect(engine).get_table_names()
    assert upgrade_store(engine) == (INITIAL_REVISION, head_revision())
    assert "predictions" in inspect(engine).get_table_names()
    engine.dispose()
