"""What the routes share: settings, the predictor, the store, the pool, the metrics; and auth."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from encore.inference.interface import SongPredictor
from encore.serve.errors import ApiError
from encore.serve.idempotency import IdempotencyRecords
from encore.serve.limits import InferencePool
from encore.serve.metrics import ServiceMetrics
from encore.serve.settings import ServeSettings

logger = logging.getLogger(__name__)

__all__ = ["ServiceState", "get_state", "require_store", "require_writer"]


@dataclass
class ServiceState:
    """One running service."""

    settings: ServeSettings
    predictor: SongPredictor
    run_id: str
    pool: InferencePool
    metrics: ServiceMetrics
    store: Any = None
    idempotency: IdempotencyRecords = field(default_factory=IdempotencyRecords)


def get_state(request: Request) -> ServiceState:
    return request.app.state.encore


def require_store(state: ServiceState) -> Any:
    if state.store is None:
        raise ApiError(503, "no_store", "this server has no store; start it with `encore serve RUN -w WORKSPACE`")
    return state.store


def require_writer(request: Request) -> None:
    """Allow a write only with the configured bearer token (or in dev mode with none configured).

    Raises:
        ApiError: 401 without a token, 403 with a wrong one or when writes are disabled.
    """
    settings = get_state(request).settings
    if settings.token is None:
        if settings.dev:
            return
        raise ApiError(
            403,
            "writes_disabled",
            "this server accepts no writes: set ENCORE_API_TOKEN (or --token), or start it with --dev for local testing",
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401, "unauthorized", "writes need an 'Authorization: Bearer <token>' header", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(given.strip().encode(), settings.token.get_secret_value().encode()):
        raise ApiError(403, "forbidden", "the bearer token is not valid for this server")
