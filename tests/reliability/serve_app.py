"""An app factory for ``uvicorn --factory --workers N``: each worker process builds its own app.

``encore serve`` runs one process; a deployment that wants several behind one port runs
``uvicorn --workers N --factory`` on a factory like this one, which reads its settings
from ``ENCORE_SERVE_*`` and ``ENCORE_API_TOKEN`` (see :class:`encore.serve.ServeSettings`).
"""

from __future__ import annotations

from fastapi import FastAPI

from encore.serve import ServeSettings, create_app


def create_service() -> FastAPI:
    """The service configured from the environment (``ENCORE_SERVE_RUN``, ``ENCORE_SERVE_WORKSPACE``...)."""
    return create_app(ServeSettings.from_env())
