"""Bounded work: the inference queue (wait, within a memory budget, then 503) and the body limit (413).

:class:`InferencePool` runs predictions on ``workers`` threads (PyTorch and ONNX Runtime
release the GIL). A request waits its turn in a first-come, first-served queue; what
bounds the queue is memory: the uploads it holds may total at most ``queue_bytes``
(a quarter of the memory available when the server starts, by default), and a request
waits at most ``queue_timeout`` seconds for a worker. Only past either limit is it
answered 503 with ``Retry-After``, so a burst of uploads from a music app is served,
not refused. A waiting request's place is visible by its ticket (the ``X-Request-ID``
header it was sent with) at ``GET /v1/queue/{ticket}``, which the web page polls.

:class:`BodyLimitMiddleware` refuses a request whose body is larger than the limit,
from ``Content-Length`` before reading anything, or while streaming a body that did not
declare its length, so a huge upload never reaches memory or disk. Bodies that are not
``multipart/form-data`` uploads (the JSON of ``/v1/feedback``) get a much smaller limit:
a JSON document becomes Python objects about ten times its size before any field is
checked.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from encore.serve.errors import ApiError, error_body

__all__ = ["BodyLimitMiddleware", "InferencePool", "format_bytes"]

T = TypeVar("T")


def format_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, as the options are given)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


@dataclass(eq=False)
class _Entry:
    """One admitted request: its upload size, its ticket and, while waiting, its turn."""

    nbytes: int
    ticket: str | None
    turn: asyncio.Future | None = field(default=None, repr=False)


class InferencePool:
    """A fixed thread pool behind a first-come, first-served queue bounded by memory and time.

    Args:
        workers: Threads running predictions (one per core).
        queue_bytes: Most bytes of uploads admitted at once (waiting or running); a
            request that would pass it is refused at once (one request is always admitted).
        queue_timeout: Most seconds a request waits for a worker before it is refused.

    All methods but :meth:`shutdown` run on the event loop's thread.
    """

    def __init__(self, workers: int, *, queue_bytes: int, queue_timeout: float) -> None:
        self.workers = workers
        self.queue_bytes = queue_bytes
        self.queue_timeout = queue_timeout
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encore-infer")
        self._queue: deque[_Entry] = deque()
        self._running: list[_Entry] = []
        self._free = workers
        self._bytes = 0
        self._admitted = 0
        self._seconds_per_call = 1.0  # running mean of a call's duration, for Retry-After

    @property
    def in_flight(self) -> int:
        """Calls running or waiting now."""
        return self._admitted

    @property
    def waiting(self) -> int:
        """Calls waiting for a worker now."""
        return len(self._queue)  # a call leaves the queue when its turn comes or its wait ends

    @property
    def queued_bytes(self) -> int:
        """Bytes of uploads held by admitted calls now."""
        return self._bytes

    def position(self, ticket: str) -> dict[str, Any] | None:
        """Where the call with ``ticket`` is: ``{"state": "waiting", "position": 3, ...}``, or None."""
        for ahead, entry in enumerate(self._queue):
            if entry.ticket == ticket:
                return {
                    "state": "waiting",
                    "position": ahead + 1,
                    "ahead": ahead,
                    "workers": self.workers,
                    "estimated_seconds": round(self._seconds_per_call * (ahead + 1) / self.workers, 1),
                }
        if any(entry.ticket == ticket for entry in self._running):
            return {"state": "running", "position": 0, "ahead": 0, "workers": self.workers}
        return None

    def _retry_after(self) -> str:
        return str(max(1, math.ceil(self._seconds_per_call * (self.waiting + 1) / self.workers)))

    def _admit(self, nbytes: int, ticket: str | None) -> _Entry:
        if self._admitted and self._bytes + nbytes > self.queue_bytes:
            raise ApiError(
                503,
                "queue_full",
                f"the queue is full: {self._admitted} requests hold {format_bytes(self._bytes)} of uploads, and this "
                f"one's {format_bytes(nbytes)} would pass the limit of {format_bytes(self.queue_bytes)} "
                "(encore serve --queue-mb, or ENCORE_SERVE_QUEUE_BYTES); retry after the seconds in Retry-After",
                headers={"Retry-After": self._retry_after()},
            )
        self._admitted += 1
        self._bytes += nbytes
        return _Entry(nbytes, ticket)

    def _leave(self, entry: _Entry) -> None:
        self._admitted -= 1
        self._bytes -= entry.nbytes

    def _pass_on(self) -> None:
        """A worker came free: give it to the first call still waiting, else keep it."""
        while self._queue:
            entry = self._queue.popleft()
            if entry.turn is not None and not entry.turn.done():
                entry.turn.set_result(None)
                return
        self._free += 1

    async def _wait_turn(self, entry: _Entry) -> None:
        if self._free and not self._queue:
            self._free -= 1
            return
        entry.turn = asyncio.get_running_loop().create_future()
        self._queue.append(entry)
        try:
            await asyncio.wait_for(entry.turn, self.queue_timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as error:
            granted = entry.turn.done() and not entry.turn.cancelled()
            if granted and isinstance(error, asyncio.TimeoutError):
                return  # the turn came just as the wait ended: take it
            if granted:  # the client left as its turn came: hand the worker on
                self._pass_on()
            elif entry in self._queue:
                self._queue.remove(entry)
            if isinstance(error, asyncio.CancelledError):
                raise
            raise ApiError(
                503,
                "queue_timeout",
                f"waited {self.queue_timeout:g} s for one of the {self.workers} inference workers "
                f"({self.waiting} requests still wait); retry after the seconds in Retry-After, or raise "
                "the wait with encore serve --queue-timeout (ENCORE_SERVE_QUEUE_TIMEOUT)",
                headers={"Retry-After": self._retry_after()},
            ) from None

    async def run(self, fn: Callable[..., T], *args: Any, nbytes: int = 0, ticket: str | None = None, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on a worker thread when its turn comes.

        Args:
            fn: The work (a prediction).
            nbytes: Bytes of upload the call holds while it waits and runs.
            ticket: The client's request id, to report the call's place in the queue.

        Raises:
            ApiError: 503 ``queue_full`` when the uploads admitted would pass ``queue_bytes``,
                or ``queue_timeout`` when no worker came free within ``queue_timeout`` seconds.
        """
        entry = self._admit(nbytes, ticket)
        try:
            await self._wait_turn(entry)
            loop = asyncio.get_running_loop()
            started = loop.time()

            def finished(_: Any) -> None:  # the worker is free only when the thread is done
                self._running.remove(entry)
                self._seconds_per_call = 0.8 * self._seconds_per_call + 0.2 * (loop.time() - started)
                self._pass_on()

            self._running.append(entry)
            work = loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))
            work.add_done_callback(finished)
            return await asyncio.shield(work)
        finally:
            self._leave(entry)

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
        if upload:
            hint = (
                "send a smaller file or fewer files, or start the server with a larger "
                "encore serve --max-upload-mb (ENCORE_SERVE_MAX_UPLOAD_BYTES)"
            )
        else:
            hint = "send fewer events per request, or start the server with a larger ENCORE_SERVE_MAX_JSON_BYTES"
        message = f"request body is larger than {limit} bytes ({format_bytes(limit)}); {hint}"
        body = json.dumps(error_body("upload_too_large", message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
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
