"""Fixtures for the store, importer and target tests: a store on SQLite and on PostgreSQL, tiny tables.

The conftest of ``tests/store``, ``tests/feedback`` and ``tests/targets`` imports them.

The PostgreSQL store uses ``ENCORE_TEST_POSTGRES_URL`` (default: the local server with
trust auth); each test gets a fresh schema, dropped afterwards. When the server cannot
be reached, the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from encore.store import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A store location: a SQLite file path, or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "feedback.db")
        return
    with request.getfixturevalue("fresh_schema_url")("t") as url:
        yield url


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
