"""``POST /v1/feedback`` and ``GET /v1/tracks/{track_id}``.

Events are validated by the importers' rules (known track, kind, star range, milliseconds
no longer than the track, tag text, a timestamp not in the future); good events are
stored and bad ones reported and quarantined, as an import does. An event is stored once
by its content, with the key every import computes; the ``Idempotency-Key`` header only
guards retries (:mod:`.idempotency`). Each request is one store transaction: after a
crash the store has all of its events or none.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Header, Path, Request, Response

from encore.store.dbvalues import compute_event_keys
from encore.feedback.importers.events import validate_events
from encore.store.schema import QuarantinedRow
from encore.serve.errors import ApiError
from encore.serve.idempotency import body_digest
from encore.serve.schemas import TRACK_ID_PATTERN, FeedbackRequest, FeedbackResponse
from encore.serve.state import get_state, require_store, require_writer

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["feedback"])

SOURCE = "api"
_COLUMNS = ("track_id", "kind", "value", "listener_id", "timestamp")


def received_time() -> pd.Timestamp:
    """Now, in UTC: the timestamp of events sent without one."""
    return pd.Timestamp.now(tz="UTC")


EPOCH = pd.Timestamp(0, tz="UTC")


def untimed_event_keys(events: pd.DataFrame, idempotency_key: str | None) -> list[str]:
    """The event keys of events sent without a timestamp (stamped on arrival).

    Their content (track, listener, kind, value) with, in place of a time of their own,
    the request's Idempotency-Key when it has one (so a retry, even to a restarted
    server, stores them once) or else the minute they arrived (so the same event sent
    twice within a minute is one event). The same function keys every import's events.
    """
    if idempotency_key:
        stand_in = events.assign(timestamp=EPOCH, source=f"{SOURCE}\x1fIdempotency-Key\x1f{idempotency_key}")
    else:
        stand_in = events.assign(timestamp=events["timestamp"].dt.floor("min"))
    return compute_event_keys(stand_in)


@router.post("/feedback", response_model=FeedbackResponse, dependencies=[Depends(require_writer)])
def add_feedback(
    request: Request,
    response: Response,
    body: FeedbackRequest,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=8, max_length=200, description="retry-safe request id, 8-200 characters"),
    ] = None,
) -> dict[str, Any]:
    """Store listener events, each once by its content; a retry with the same Idempotency-Key gets the first answer.

    Events are checked as an import checks a file's rows (known track, kind, stars, a play
    no longer than its track, no timestamp more than 15 min ahead); bad ones are reported
    in ``rejected`` and quarantined while the good ones are stored. An event without a
    timestamp is stamped with the time it arrived; without an Idempotency-Key the same
    event sent again within that minute is a duplicate. Reusing an Idempotency-Key with
    another body is 409.
    """
    state = get_state(request)
    store = require_store(state)
    limit = state.settings.max_events
    if len(body.events) > limit:
        raise ApiError(
            422,
            "too_many_events",
            f"{len(body.events)} events sent; at most {limit} per request "
            "(ENCORE_SERVE_MAX_EVENTS); send them in several requests",
        )
    digest = body_digest(body.model_dump()) if idempotency_key else ""
    if idempotency_key:
        answer = state.idempotency.answer_for(idempotency_key, digest)
        if answer is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return {**answer, "replayed": True}
    received = received_time()
    frame = pd.DataFrame([{c: getattr(e, c) for c in _COLUMNS} for e in body.events], columns=list(_COLUMNS))
    untimed = frame["timestamp"].isna().to_numpy()
    frame["timestamp"] = frame["timestamp"].where(~untimed, received.isoformat()).astype(str)
    frame["value"] = frame["value"].astype(object).where(frame["value"].notna(), None)
    frame.index = pd.RangeIndex(len(frame))
    durations = store.track_durations(set(frame["track_id"]))
    events, reasons = validate_events(frame, {c: c for c in _COLUMNS}, durations, SOURCE, now=received)
    bad = (reasons != "").to_numpy()
    rejected = [{"index": int(i), "reason": reasons.iloc[i]} for i in range(len(frame)) if bad[i]]
    if bad.all():
        raise ApiError(
            422,
            "invalid_feedback",
            "no event could be stored: " + "; ".join(f"events[{r['index']}]: {r['reason']}" for r in rejected[:10]),
        )
    if (untimed & ~bad).any():
        events["event_key"] = None
        events.loc[untimed & ~bad, "event_key"] = untimed_event_keys(events[untimed & ~bad], idempotency_key)
    stored, duplicate = store.add_events(events[~bad])
    if rejected:
        where = f"api:/v1/feedback {idempotency_key}" if idempotency_key else "api:/v1/feedback"
        store.add_quarantine(
            [
                QuarantinedRow(
                    where, r["index"] + 1, r["reason"], json.dumps(body.events[r["index"]].model_dump(exclude_none=True))
                )
                for r in rejected
            ]
        )
    state.metrics.events.labels("stored").inc(stored)
    state.metrics.events.labels("duplicate").inc(duplicate)
    state.metrics.events.labels("rejected").inc(len(rejected))
    answer = {"stored": stored, "duplicate": duplicate, "rejected": rejected}
    if idempotency_key:
        state.idempotency.record(idempotency_key, digest, answer)
    return answer


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
