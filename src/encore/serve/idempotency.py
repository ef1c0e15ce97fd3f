"""Idempotency-Key records: a retried request gets the first answer again; a reused key with another body, 409.

Which events are the same is decided by their content (the event key every import
computes), so the Idempotency-Key only guards retries: the running server remembers
each key with a digest of its request body and the answer for :data:`KEY_TTL_SECONDS`,
at most :data:`MAX_KEYS` keys (the oldest forgotten first). After a restart a retry is
still stored once wherever its events' content is the same.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from encore.serve.errors import ApiError

__all__ = ["IdempotencyRecords", "KEY_TTL_SECONDS", "MAX_KEYS", "body_digest"]

KEY_TTL_SECONDS = 24 * 3600
MAX_KEYS = 100_000


def body_digest(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (key order and spacing do not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


class IdempotencyRecords:
    """Thread-safe, bounded, expiring records of ``key -> (body digest, answer)``."""

    def __init__(self, *, ttl_seconds: float = KEY_TTL_SECONDS, max_keys: int = MAX_KEYS) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_keys = max_keys
        self._records: OrderedDict[str, tuple[float, str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def answer_for(self, key: str, digest: str) -> dict[str, Any] | None:
        """The answer recorded for ``key``, or None when the key is new.

        Raises:
            ApiError: 409 when ``key`` was used with another body.
        """
        now = time.monotonic()
        with self._lock:
            while self._records and next(iter(self._records.values()))[0] < now - self.ttl_seconds:
                self._records.popitem(last=False)
            record = self._records.get(key)
        if record is None:
            return None
        if record[1] != digest:
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was already used for a request with another body; a retry must send "
                "the same body, and a new request needs a new key",
            )
        return record[2]

    def record(self, key: str, digest: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._records[key] = (time.monotonic(), digest, answer)
            self._records.move_to_end(key)
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)
