"""``POST /v1/feedback`` and ``GET /v1/tracks/{track_id}``.

Events are validated by the importers' rules (known track, kind, star range, milliseconds,
tag text, timestamp); good events are stored and bad ones reported and quarantined, as
an import does. With an ``Idempotency-Key`` header each event's key is derived from it
(SHA-256 of the key and the event's position), so a retried request stores nothing new
even when its events carry no timestamp. Each request is one store transaction: after a
crash the store has all of its events or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Header, Path, Request
from sqlalchemy import select

from encore.feedback import schema
from encore.feedback.importers.events import _validate_events
from encore.feedback.schema import QuarantinedRow
from encore.serve.errors import ApiError
from encore.serve.schemas import TRACK_ID_PATTERN, FeedbackRequest, FeedbackResponse
from encore.serve.state import get_state, require_store, require_writer

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["feedback"])

SOURCE = "api"
_COLUMNS = ("track_id", "kind", "value", "listener_id", "timestamp")


def known_tracks(store: Any, track_ids: set[str]) -> set[str]:
    """Which of ``track_ids`` are in the store's catalogue (one indexed query)."""
    table = schema.tracks
    with store.engine.connect() as conn:
        rows = conn.execute(select(table.c.track_id).where(table.c.track_id.in_(sorted(track_ids))))
        return {row[0] for row in rows}


def idempotent_keys(key: str, n: int) -> list[str]:
    """One event key per position, derived from the request's Idempotency-Key."""
    return [hashlib.sha256(f"{SOURCE}\x1f{key}\x1f{i}".encode()).hexdigest() for i in range(n)]


@router.post("/feedback", response_model=FeedbackResponse, dependencies=[Depends(require_writer)])
def add_feedback(
    request: Request,
    body: FeedbackRequest,
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=200, description="retry-safe request id")] = None,
) -> dict[str, Any]:
    """Store listener events; a retried request with the same Idempotency-Key stores them once."""
    state = get_state(request)
    store = require_store(state)
    if len(body.events) > state.settings.max_events:
        raise ApiError(422, "too_many_events", f"{len(body.events)} events sent; at most max_events={state.settings.max_events}")
    now = datetime.now(timezone.utc).isoformat()
    frame = pd.DataFrame([{c: getattr(e, c) for c in _COLUMNS} for e in body.events], columns=list(_COLUMNS))
    frame["timestamp"] = frame["timestamp"].where(frame["timestamp"].notna(), now).astype(str)
    frame["value"] = frame["value"].astype(object).where(frame["value"].notna(), None)
    frame.index = pd.RangeIndex(len(frame))
    events, reasons = _validate_events(frame, {c: c for c in _COLUMNS}, known_tracks(store, set(frame["track_id"])), SOURCE)
    bad = (reasons != "").to_numpy()
    if idempotency_key:
        events["event_key"] = idempotent_keys(idempotency_key, len(events))
    rejected = [{"index": int(i), "reason": reasons.iloc[i]} for i in range(len(frame)) if bad[i]]
    if bad.all():
        raise ApiError(422, "invalid_feedback", "no event could be stored: " + "; ".join(
            f"event {r['index']}: {r['reason']}" for r in rejected[:10]))
    stored, duplicate = store.add_events(events[~bad])
    if rejected:
        where = f"api:/v1/feedback {idempotency_key}" if idempotency_key else "api:/v1/feedback"
        store.add_quarantine([
            QuarantinedRow(where, r["index"] + 1, r["reason"], json.dumps(body.events[r["index"]].model_dump(exclude_none=True)))
            for r in rejected
        ])
    state.metrics.events.labels("stored").inc(stored)
    state.metrics.events.labels("duplicate").inc(duplicate)
    state.metrics.events.labels("rejected").inc(len(rejected))
    return {"stored": stored, "duplicate": duplicate, "rejected": rejected}


@router.get("/tracks/{track_id}")
def track(request: Request, track_id: Annotated[str, Path(pattern=TRACK_ID_PATTERN)]) -> dict[str, Any]:
    """A track's stored predictions (per run) and its aggregated listener feedback."""
    store = require_store(get_state(request))
    summary = store.track_summary(track_id)
    stored = store.predictions(track_id=track_id)
    if not summary["in_catalogue"] and summary["n_events"] == 0 and stored.empty:
        raise ApiError(404, "unknown_track", f"track_id {track_id!r} has no catalogue entry, feedback or predictions")
    predictions: dict[str, dict[str, dict[str, float]]] = {}
    for run_id, kind, name, value in stored[["run_id", "kind", "name", "value"]].itertuples(index=False, name=None):
        predictions.setdefault(run_id, {}).setdefault(kind, {})[name] = round(float(value), 6)
    return {"track_id": track_id, "predictions": predictions, "feedback": summary}
