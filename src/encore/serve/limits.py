"""Bounded work: the inference pool (503 instead of an unbounded queue) and the body limit (413).

:class:`InferencePool` runs predictions on ``workers`` threads (PyTorch and ONNX Runtime
release the GIL) and admits at most ``workers + queue_size`` at once; the next request
is refused at once with 503 and ``Retry-After``. :class:`BodyLimitMiddleware` refuses a
request whose body is larger than the limit, from ``Content-Length`` before reading
anything, or while streaming a body that did not declare its length, so a huge upload
never reaches memory or disk. Bodies that are not ``multipart/form-data`` uploads (the
JSON of ``/v1/feedback``) get a much smaller limit: a JSON document becomes Python
objects about ten times its size before any field is checked.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from encore.serve.errors import ApiError, error_body

__all__ = ["BodyLimitMiddleware", "InferencePool"]

T = TypeVar("T")


class InferencePool:
    """A fixed thread pool with a bounded number of admitted calls.

    Args:
        workers: Threads running predictions (one per core).
        queue_size: Calls that may wait for a thread; more are refused.
    """

    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encore-infer")
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Calls running or waiting now."""
        return self._admitted

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on a worker thread.

        Raises:
            ApiError: 503 when ``workers + queue_size`` calls are already admitted.
        """
        with self._lock:
            if self._admitted >= self.capacity:
                raise ApiError(
                    503, "overloaded",
                    f"all {self.workers} inference workers are busy and {self.capacity - self.workers} requests wait; "
                    "retry after a second",
                    headers={"Retry-After": "1"},
                )
            self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))
        finally:
            with self._lock:
                self._admitted -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class BodyLimitMiddleware:
    """ASGI middleware answering 413 for bodies over ``max_bytes``.

    Args:
        app: The wrapped ASGI app.
        max_bytes: Largest ``multipart/form-data`` (upload) body accepted.
        max_json_bytes: Largest other body (JSON) accepted; ``max_bytes`` when None.
    """

    def __init__(self, app: Any, *, max_bytes: int, max_json_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_bytes if max_json_bytes is None else max_json_bytes

    async def _reject(self, send: Callable[..., Any], limit: int, upload: bool) -> None:
        hint = "send a smaller file (see max_upload_bytes)" if upload else "send fewer events per request (see max_json_bytes)"
        message = f"request body is larger than {limit} bytes; {hint}"
        body = json.dumps(error_body("upload_too_large", message)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_bytes if upload else self.max_json_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit, upload)
            return
        received = 0
        started = rejected = False

        async def limited_receive() -> dict:
            # Over the limit: answer 413 here and tell the app the client left. Raising
            # instead would not do: FastAPI turns any error while reading a body into 400.
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not rejected:
                        await self._reject(send, limit, upload)
                    rejected = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if rejected:
                return  # the 413 has been sent; whatever the app answers now is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not rejected:
                raise
