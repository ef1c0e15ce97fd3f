"""The FastAPI app factory: ``create_app(settings)`` builds one service.

Routes: ``/v1/predict``, ``/v1/predict/batch``, ``/v1/models`` (:mod:`.routes_predict`),
``/v1/feedback``, ``/v1/tracks/{id}`` (:mod:`.routes_feedback`), ``/healthz``,
``/metrics`` and the web page at ``/`` (here); OpenAPI documentation at ``/docs``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import encore
from encore.inference.interface import SongPredictor
from encore.serve.errors import register_error_handlers
from encore.serve.limits import BodyLimitMiddleware, InferencePool
from encore.serve.metrics import MetricsMiddleware, ServiceMetrics
from encore.serve.routes_feedback import router as feedback_router
from encore.serve.routes_predict import router as predict_router
from encore.serve.settings import ServeSettings
from encore.serve.state import ServiceState, get_state

logger = logging.getLogger(__name__)

__all__ = ["create_app", "load_service_predictor"]

STATIC_DIR = Path(str(resources.files("encore.serve") / "static"))


def load_service_predictor(settings: ServeSettings) -> tuple[SongPredictor, str]:
    """The predictor for ``settings.run`` and the run's name (used as ``run_id`` in the store)."""
    from encore.inference.runs import load_run

    loaded = load_run(settings.run, settings.workspace, backend=settings.backend, device=settings.device)
    return loaded.predictor, loaded.run_id


def create_app(settings: ServeSettings, *, predictor: SongPredictor | None = None, store: Any = None) -> FastAPI:
    """Build the service.

    Args:
        settings: Validated settings.
        predictor: A ready predictor (tests); loaded from ``settings.run`` when None.
        store: A ready store (tests); opened from ``settings.workspace`` when None.

    Returns:
        The app; run it with uvicorn (``encore serve`` does).
    """
    run_id = settings.run.name
    if predictor is None:
        predictor, run_id = load_service_predictor(settings)
    if store is None and settings.workspace is not None:
        from encore.workspace import Workspace

        store = Workspace.open(settings.workspace).open_store()
    state = ServiceState(
        settings=settings,
        predictor=predictor,
        run_id=run_id,
        pool=InferencePool(settings.workers, queue_bytes=settings.queue_bytes, queue_timeout=settings.queue_timeout),
        metrics=ServiceMetrics(),
        store=store,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        state.pool.shutdown()

    app = FastAPI(
        title="encore",
        version=encore.__version__,
        lifespan=lifespan,
        description="Classify and score songs from their audio; collect listener feedback. "
        "Writes need `Authorization: Bearer <token>`.",
    )
    app.state.encore = state
    register_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_json_bytes=settings.max_json_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, openapi=app.openapi)  # outermost: sees every answer
    app.include_router(predict_router)
    app.include_router(feedback_router)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> dict[str, Any]:
        """Liveness and load: the model served and the predictions in flight."""
        s = get_state(request)
        return {
            "status": "ok",
            "run": s.run_id,
            "backend": s.predictor.backend,
            "in_flight": s.pool.in_flight,
            "waiting": s.pool.waiting,
            "workers": s.pool.workers,
            "store": s.store is not None,
        }

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics(request: Request) -> Response:
        s = get_state(request)
        s.metrics.in_flight.set(s.pool.in_flight)
        s.metrics.waiting.set(s.pool.waiting)
        s.metrics.queued_bytes.set(s.pool.queued_bytes)
        return Response(s.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
