"""``kill -9`` of ``encore serve`` during a feedback request: the store has all of it or none.

A real ``encore serve`` subprocess over a SQLite workspace receives ``POST /v1/feedback``
with thousands of events; over several rounds it is killed with SIGKILL at a random
moment within about one request's duration (measured on a first, uninterrupted request).
After each kill the store holds either none or all of that request's events; the
server is started again and the client retries with the same ``Idempotency-Key``, which
stores the request exactly once (``stored + duplicate`` equals the request).
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import httpx2 as httpx
import pandas as pd
import pytest

from encore.store import Store

from .procs import AUTH, encore_serve, init_workspace

N_EVENTS = 4000
N_ROUNDS = 4
TRACKS = [f"t{i}" for i in range(10)]


def feedback_body(round_: int) -> dict:
    """``N_EVENTS`` events of every kind; half carry no timestamp (the server's clock fills it in)."""
    kinds = [("like", None), ("rating", 4), ("play", 31_000), ("tag", "Calm"), ("dislike", None), ("skip", 2_000)]
    events = []
    for i in range(N_EVENTS):
        kind, value = kinds[i % len(kinds)]
        event = {"track_id": TRACKS[i % len(TRACKS)], "kind": kind, "listener_id": f"r{round_}-l{i}"}  # all distinct
        if value is not None:
            event["value"] = value
        if i % 2:
            event["timestamp"] = f"2024-03-01T10:{i % 60:02d}:00Z"
        events.append(event)
    return {"events": events}


def _event_count(store_url: str) -> int:
    with Store.open(store_url) as store:
        return store.counts()["feedback_events"]


def _post(port: int, body: dict, key: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/v1/feedback", json=body, headers={**AUTH, "Idempotency-Key": key}, timeout=120)


@pytest.mark.slow
def test_killed_service_stores_all_or_nothing_and_the_retry_stores_once(tiny_run, tmp_path):
    store_url = f"sqlite:///{tmp_path / 'ws' / 'encore.sqlite'}"
    ws = init_workspace(tmp_path / "ws", store_url)
    with Store.open(store_url) as store:
        store.add_tracks(pd.DataFrame({"track_id": TRACKS}))
    rng = random.Random()
    with encore_serve(tiny_run, ws, max_events=N_EVENTS) as port:
        started = time.monotonic()
        first = _post(port, feedback_body(0), str(uuid.uuid4()))
        request_seconds = time.monotonic() - started
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == N_EVENTS
    total, outcomes, pending = N_EVENTS, [], None
    for round_ in range(1, N_ROUNDS + 2):
        with encore_serve(tiny_run, ws, max_events=N_EVENTS) as port:
            if pending is not None:  # the client retries the killed request on the restarted server
                total = _check_retry(port, store_url, *pending)
            if round_ > N_ROUNDS:
                break
            body, key = feedback_body(round_), str(uuid.uuid4())
            responses: list[object] = []
            client = threading.Thread(target=lambda: responses.append(_safe_post(port, body, key)))
            client.start()
            moment = rng.uniform(0.0, 1.2 * request_seconds)
            time.sleep(moment)
        # leaving the block SIGKILLed the server's process group
        client.join(60)
        after_kill = _event_count(store_url)
        assert after_kill - total in (0, N_EVENTS), f"round {round_}: {after_kill - total} of {N_EVENTS} events stored"
        outcomes.append((round(moment, 3), after_kill - total))
        pending = (body, key, after_kill - total, total)
    with Store.open(store_url) as store:
        events = store.events()
    assert len(events) == (N_ROUNDS + 1) * N_EVENTS
    per_round = events["listener_id"].str.extract(r"^r(\d+)-")[0].value_counts()
    assert per_round.to_dict() == {str(r): N_EVENTS for r in range(N_ROUNDS + 1)}
    print(f"request took {request_seconds:.2f} s; (kill moment s, events stored before the retry): {outcomes}")


def _check_retry(port: int, store_url: str, body: dict, key: str, stored_before: int, total: int) -> int:
    """Retries a killed request twice: the first stores what is missing, the second nothing."""
    retry = _post(port, body, key)
    again = _post(port, body, key)
    assert retry.status_code == 200, retry.text
    assert retry.json()["stored"] == N_EVENTS - stored_before
    assert retry.json()["stored"] + retry.json()["duplicate"] == N_EVENTS
    assert again.json() == {**retry.json(), "replayed": True}  # the recorded answer
    assert _event_count(store_url) == total + N_EVENTS
    return total + N_EVENTS


def _safe_post(port: int, body: dict, key: str) -> object:
    """The response, or the connection error the kill caused."""
    try:
        return _post(port, body, key)
    except httpx.HTTPError as error:
        return error
