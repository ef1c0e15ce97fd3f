"""The store fixtures (on SQLite and PostgreSQL) and tiny tables of tests/store_fixtures.py."""

from store_fixtures import filled_store, store, store_url, tracks  # noqa: F401 - fixtures for this folder's tests
