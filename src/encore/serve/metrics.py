"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["MetricsMiddleware", "ServiceMetrics"]


class ServiceMetrics:
    """Request counts and latencies per route, songs predicted, feedback stored, pool load."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "encore_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "encore_http_request_seconds",
            "Request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.songs = Counter("encore_songs_predicted", "Songs predicted", registry=self.registry)
        self.events = Counter("encore_feedback_events", "Feedback events by outcome", ["outcome"], registry=self.registry)
        self.in_flight = Gauge("encore_inference_in_flight", "Predictions running or waiting", registry=self.registry)
        self.waiting = Gauge("encore_inference_waiting", "Predictions waiting for a worker", registry=self.registry)
        self.queued_bytes = Gauge(
            "encore_queue_bytes", "Bytes of uploads held by predictions running or waiting", registry=self.registry
        )

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting every answer once, by the status the client was sent.

    It wraps the whole app (the body limit included), so a 413 refused before routing is
    counted, and an answer the app made after the body limit had already answered (and
    which was therefore dropped) is not. A request that fails with no answer started is
    counted as the 500 the server sends for it.

    Args:
        app: The wrapped ASGI app.
        metrics: Where to count.
        openapi: The app's OpenAPI schema (a function), whose path templates name a
            request refused before routing (``/v1/tracks/{track_id}``).
    """

    def __init__(self, app: Any, *, metrics: ServiceMetrics, openapi: Callable[[], dict]) -> None:
        self.app, self.metrics, self.openapi = app, metrics, openapi
        self._templates: list[tuple[re.Pattern, str]] | None = None

    def _route(self, scope: dict) -> str:
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", "<unmatched>")
        if self._templates is None:  # FastAPI's routing internals vary by version; its schema does not
            self._templates = [
                (re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))), path) for path in self.openapi()["paths"]
            ]
        path = scope.get("path", "")
        return next((template for pattern, template in self._templates if pattern.fullmatch(path)), "<unmatched>")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def counting_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if status is None:
                status = 500
            raise
        finally:
            if status is not None:
                self.metrics.observe(self._route(scope), scope.get("method", ""), status, started)
