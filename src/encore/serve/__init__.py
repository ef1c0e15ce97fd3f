"""The HTTP service: ``encore serve RUN`` (FastAPI + uvicorn) and its web page.

Example:
    >>> from encore.serve import ServeSettings, create_app          # doctest: +SKIP
    >>> app = create_app(ServeSettings(run="runs/cnn", workspace="ws", dev=True))
"""

from encore.serve.app import create_app
from encore.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
