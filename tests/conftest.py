"""Fixtures shared by every test folder: the PostgreSQL test server and fresh schemas on it.

The server comes from ``ENCORE_TEST_POSTGRES_URL`` (default: the local server with trust
auth). When it cannot be reached, tests that need it are skipped with the reason, unless
``ENCORE_REQUIRE_POSTGRES=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import machine  # noqa: F401 - first: ENCORE_TEST_CPU fakes the CPU's features before any test asks

# `auto` means the CPU in the tests, also on a GPU node, so numbers are compared on one
# path; the tests marked cuda ask for the GPU by name.
os.environ.setdefault("ENCORE_DEVICE", "cpu")
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

POSTGRES_URL = os.environ.get("ENCORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


@pytest.fixture
def fresh_schema_url(postgres_engine: Engine):
    """``fresh_schema_url(prefix, before_drop=None)``: a context giving a store URL on a new schema."""
    return lambda prefix, before_drop=None: _fresh_schema_url(postgres_engine, prefix, before_drop=before_drop)


@contextmanager
def _fresh_schema_url(engine: Engine, prefix: str, *, before_drop: str | None = None) -> Iterator[str]:
    """A store URL on a new schema (``search_path`` in the URL), dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            if before_drop:
                conn.execute(text(before_drop))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
