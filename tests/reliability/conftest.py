"""Fixtures for the reliability tests: a PostgreSQL store on a fresh schema, a tiny run.

PostgreSQL comes from ``ENCORE_TEST_POSTGRES_URL`` (default: the local server with trust
auth). Each test gets its own schema, dropped afterwards, so these tests never collide
with ``tests/feedback`` or with each other. When the server cannot be reached the tests
that need it are skipped with the reason, unless ``ENCORE_REQUIRE_POSTGRES=1`` (CI),
where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def pg_store_url(fresh_schema_url) -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema (``search_path`` in the URL), dropped afterwards."""
    # a killed writer's backend may still hold locks for a moment: end it before the drop
    end_writers = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name LIKE 'encore-rel%' AND pid <> pg_backend_pid()"
    )
    with fresh_schema_url("rel", before_drop=end_writers) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file URL, or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'encore.sqlite'}"
    return request.getfixturevalue("pg_store_url")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with a tiny CNN (random weights): enough for ``encore serve``."""
    import torch

    from encore.models.checkpoint import save_checkpoint
    from encore.models.classifier import EncoreModel

    from tiny_cnn import tiny_card

    from .procs import TINY_MODEL_KWARGS

    torch.manual_seed(0)
    model = EncoreModel(**TINY_MODEL_KWARGS).eval()
    run = tmp_path_factory.mktemp("reliability-runs") / "tiny"
    save_checkpoint(run / "checkpoint.pt", model, tiny_card(network=TINY_MODEL_KWARGS))
    return run
