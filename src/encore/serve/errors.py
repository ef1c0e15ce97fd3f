"""Every error the service returns, as JSON ``{"error": {"code", "message"}}``.

encore's own exceptions are mapped here and nowhere else: undecodable or unsupported
audio is 415, a bad value 422, an unavailable store 503, a broken model 500. Routes
raise :class:`ApiError` for HTTP-only conditions (401/403 auth, 404, 413, 503 overload).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from encore.exceptions import (
    AudioDecodeError,
    CheckpointError,
    EncoreError,
    FeedbackDataError,
    ParameterError,
    StoreError,
)

logger = logging.getLogger(__name__)

__all__ = ["ApiError", "error_body", "field_name", "register_error_handlers", "validation_message"]


class ApiError(Exception):
    """An HTTP error with a machine-readable code and a message that says what to do.

    Args:
        status: HTTP status.
        code: Short snake_case code, e.g. ``"upload_too_large"``.
        message: What was wrong, naming the value and the fix.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


_PLACES = {"header": "header", "query": "query parameter", "path": "path parameter", "form": "form field"}


def field_name(loc: tuple | list) -> str:
    """A validation error's place as a client reads it: ``events[0].value``, ``header Idempotency-Key``.

    FastAPI's ``("body", "events", 0, "value")`` loses its "body" and joins the rest; a
    JSON syntax error's ``("body", 23)`` becomes "the body (character 23)".
    """
    parts = list(loc)
    if not parts:
        return "the request"
    place, rest = str(parts[0]), parts[1:]
    if place == "body" and len(rest) == 1 and isinstance(rest[0], int):
        return f"the body (character {rest[0]})"
    if place == "header" and rest:
        return f"header {'-'.join(w.capitalize() for w in re.split('[-_]', str(rest[0])))}"
    path = ""
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if place == "body":
        return path or "the body"
    return f"{_PLACES.get(place, place)} {path}".strip()


def validation_message(error: dict[str, Any]) -> str:
    """Pydantic's message, with a JSON syntax error's reason spelt out."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return (
            f'not valid JSON ({reason}); send a JSON object such as {{"events": [...]}}'
            if reason
            else 'not valid JSON; send a JSON object such as {"events": [...]}'
        )
    return str(error.get("msg", ""))


_ENCORE_STATUS: tuple[tuple[type[EncoreError], int, str], ...] = (
    (AudioDecodeError, 415, "unsupported_audio"),
    (FeedbackDataError, 422, "invalid_feedback"),
    (ParameterError, 422, "invalid_value"),
    (StoreError, 503, "store_unavailable"),
    (CheckpointError, 500, "model_unavailable"),
)


def _encore_response(err: EncoreError) -> JSONResponse:
    for kind, status, code in _ENCORE_STATUS:
        if isinstance(err, kind):
            return JSONResponse(error_body(code, str(err)), status_code=status)
    logger.error("unmapped encore error: %s", err)
    return JSONResponse(error_body("internal_error", str(err)), status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    """Install the JSON handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(error_body(err.code, err.message), status_code=err.status, headers=err.headers)

    @app.exception_handler(EncoreError)
    async def _encore(_: Request, err: EncoreError) -> JSONResponse:
        return _encore_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        details = [{"field": field_name(e.get("loc", ())), "message": validation_message(e)} for e in err.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return JSONResponse(error_body("invalid_request", f"invalid request ({summary})", details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return JSONResponse(error_body(code, str(err.detail)), status_code=err.status_code)
