"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    """Request counts and latencies per route, songs predicted, feedback stored, pool load."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "encore_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "encore_http_request_seconds", "Request latency by route", ["route"], registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.songs = Counter("encore_songs_predicted", "Songs predicted", registry=self.registry)
        self.events = Counter("encore_feedback_events", "Feedback events by outcome", ["outcome"], registry=self.registry)
        self.in_flight = Gauge("encore_inference_in_flight", "Predictions running or waiting", registry=self.registry)

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Any:
        """An HTTP middleware function recording every request by its route template."""

        async def record(request: Any, call_next: Any) -> Any:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            self.observe(getattr(route, "path", "<unmatched>"), request.method, response.status_code, started)
            return response

        return record
