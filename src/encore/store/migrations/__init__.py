"""Alembic migrations of the feedback store (``env.py``, ``versions/``).

:func:`encore.store.migrate.upgrade_store` runs them; ``encore store upgrade`` is the
command line. The revision files are the schema's history: every change to
:mod:`encore.store.schema` needs a new file in ``versions/`` (a test compares the
migrated database with the schema and fails otherwise).
"""
