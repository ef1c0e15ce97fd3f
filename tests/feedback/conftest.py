"""Fixtures for the feedback tests: a store on SQLite and on PostgreSQL, tiny tables.

The PostgreSQL store uses ``ENCORE_TEST_POSTGRES_URL`` (default: the local server with
trust auth); each test gets a fresh schema, dropped afterwards. When the server cannot
be reached, the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from encore.feedback.store import Store

POSTGRES_URL = os.environ.get(
    "ENCORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """An engine on the test server, or a skip naming why it is unreachable."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        engine.dispose()
        safe = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        if os.environ.get("ENCORE_REQUIRE_POSTGRES") == "1":  # CI: a missing server is a failure
            pytest.fail(f"PostgreSQL required but not reachable at {safe}: {error.orig}")
        pytest.skip(f"PostgreSQL not reachable at {safe} (set ENCORE_TEST_POSTGRES_URL): {error.orig}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A store location: a SQLite file path, or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "feedback.db")
        return
    engine: Engine = request.getfixturevalue("postgres_engine")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty store on each backend."""
    with Store.open(store_url) as opened:
        yield opened


@pytest.fixture
def tracks() -> pd.DataFrame:
    """Four tracks by three artists."""
    return pd.DataFrame(
        {
            "track_id": ["t1", "t2", "t3", "t4"],
            "path": ["/music/a/1.mp3", "/music/a/2.mp3", "/music/b/3.mp3", "/music/c/4.mp3"],
            "artist": ["Ann", "Ann", "Bob", "Cy"],
            "title": ["One", "Two", "Three", "Four"],
            "duration": [180.0, 200.0, None, 95.5],
        }
    )


@pytest.fixture
def filled_store(store: Store, tracks: pd.DataFrame) -> Store:
    """A store holding :func:`tracks`."""
    store.add_tracks(tracks)
    return store
