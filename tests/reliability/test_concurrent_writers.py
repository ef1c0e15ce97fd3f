"""A shared PostgreSQL store under concurrent writers: nothing lost, nothing stored twice.

Four "service worker" processes call :meth:`Store.add_events` with the events of
``POST /v1/feedback`` requests, keyed by their content as the service keys them; every
request is sent by two workers and twice by each, with retries on transient errors. Two
``encore feedback import`` processes load overlapping CSV files at the same time. While
they run, the test ends random writers' database connections (``pg_terminate_backend``),
so retries really happen. Afterwards the store holds exactly the known set of events.

The same again through HTTP: ``uvicorn --workers 2`` over a PostgreSQL workspace, four
client threads posting every request twice with the same ``Idempotency-Key`` and
retrying on errors, an importer alongside, and one uvicorn worker killed with SIGKILL
mid-way.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pandas as pd
import psutil
import pytest
from sqlalchemy import create_engine, text

from encore.exceptions import StoreError
from encore.store import Store

from .procs import (
    AUTH,
    ENCORE,
    HERE,
    TOKEN,
    child_env,
    free_port,
    init_workspace,
    start_server,
    stop_process_group,
    with_app_name,
)

TRACKS = [f"t{i}" for i in range(8)]
N_REQUESTS, PER_REQUEST, N_FILE_ROWS = 60, 5, 400
PLAY_MS = 30_000
"""Each file row is a play this long plus its row number: distinct values, and plays, not skips."""


def request_events(request: int) -> pd.DataFrame:
    """One service request's events: its listener likes the first tracks (keyed by content, as the service keys them)."""
    return pd.DataFrame(
        {
            "track_id": TRACKS[:PER_REQUEST],
            "listener_id": f"web-{request:04d}",
            "kind": "like",
            "timestamp": "2024-05-01T12:00:00Z",
            "source": "api",
        }
    )


def write_import_files(folder: Path) -> tuple[Path, Path]:
    """Two CSVs of distinct play events; the middle half of the rows is in both."""
    rows = pd.DataFrame(
        {
            "track_id": [TRACKS[i % len(TRACKS)] for i in range(N_FILE_ROWS)],
            "listener_id": [f"u{i}" for i in range(N_FILE_ROWS)],
            "kind": "play",
            "value": [PLAY_MS + i for i in range(N_FILE_ROWS)],  # distinct, and plausibly long plays
            "timestamp": "2024-05-02T00:00:00Z",
        }
    )
    first, second = folder / "export-a.csv", folder / "export-b.csv"
    rows.iloc[: 3 * N_FILE_ROWS // 4].to_csv(first, index=False)
    rows.iloc[N_FILE_ROWS // 4 :].to_csv(second, index=False)
    return first, second


def with_retries(call, attempts: int = 40):
    """``call()``, retried with backoff on :class:`StoreError` (a dropped connection, a failed write)."""
    for attempt in range(attempts):
        try:
            return call()
        except StoreError:
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.02 * 2**attempt, 0.5) * random.random())


def service_worker(url: str, worker: int, requests: list[int]) -> None:
    """Sends each of ``requests`` twice, in random order, as a service worker would on client retries."""
    rng = random.Random(worker)
    queue = requests * 2
    rng.shuffle(queue)
    store = Store(with_app_name(url, f"encore-rel-worker-{worker}"))
    with_retries(lambda: store.engine)
    for request in queue:
        with_retries(lambda request=request: store.add_events(request_events(request)))
    store.close()


def run_importer(command: list[str], attempts: int = 20) -> int:
    """Runs ``encore feedback import`` until it succeeds; how many runs it took."""
    for attempt in range(1, attempts + 1):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=child_env())
        if result.returncode == 0:
            return attempt
        assert "error:" in result.stderr, result.stderr  # a clean one-line failure, then retry
        time.sleep(0.1 * attempt)
    raise AssertionError(f"import failed {attempts} times: {result.stderr}")


def terminate_writers(url: str, stop: threading.Event, ended: list[int]) -> None:
    """Ends a random writer's connection every ~0.2 s until ``stop``."""
    engine = create_engine(url)
    rng = random.Random(0)
    try:
        while not stop.wait(rng.uniform(0.1, 0.3)):
            with engine.connect() as conn:
                pids = (
                    conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'encore-rel-%'"))
                    .scalars()
                    .all()
                )
                if pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": rng.choice(pids)})
                    ended.append(1)
    finally:
        engine.dispose()


def check_known_set(url: str) -> None:
    """The store holds each request's keys once and each file row once, and nothing else."""
    with create_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT track_id, source, listener_id, value_num FROM feedback_events")).all()
    api = [row for row in rows if row.source == "api"]
    files = [row for row in rows if row.source != "api"]
    expected = {(f"web-{r:04d}", track) for r in range(N_REQUESTS) for track in TRACKS[:PER_REQUEST]}
    assert len(api) == len(expected) and {(row.listener_id, row.track_id) for row in api} == expected
    assert sorted(int(row.value_num) - PLAY_MS for row in files) == list(range(N_FILE_ROWS))
    assert len(rows) == N_REQUESTS * PER_REQUEST + N_FILE_ROWS


@pytest.fixture
def pg_workspace(pg_store_url, tmp_path) -> Path:
    ws = init_workspace(tmp_path / "ws", with_app_name(pg_store_url, "encore-rel-importer"))
    with Store.open(pg_store_url) as store:
        store.add_tracks(pd.DataFrame({"track_id": TRACKS}))
    return ws


@pytest.mark.slow
@pytest.mark.postgres
def test_four_service_workers_and_two_importers_store_exactly_the_known_set(pg_store_url, pg_workspace, tmp_path):
    paths = write_import_files(tmp_path)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=service_worker, args=(pg_store_url, w, [r for r in range(N_REQUESTS) if r % 4 in (w, (w + 1) % 4)])
        )
        for w in range(4)
    ]
    stop, ended = threading.Event(), []
    chaos = threading.Thread(target=terminate_writers, args=(pg_store_url, stop, ended))
    for worker in workers:
        worker.start()
    chaos.start()
    attempts: list[int] = []
    importers = [
        threading.Thread(
            target=lambda p=p: attempts.append(
                run_importer([*ENCORE, "feedback", "import", str(p), "-w", str(pg_workspace), "--source", "export"])
            )
        )
        for p in paths
    ]
    for importer in importers:
        importer.start()
    for importer in importers:
        importer.join(300)
    for worker in workers:
        worker.join(300)
    stop.set()
    chaos.join(30)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert len(attempts) == 2
    check_known_set(pg_store_url)
    print(f"connections ended mid-run: {len(ended)}; importer runs needed: {attempts}")


def _post_with_retries(port: int, request: int, outcomes: list[str]) -> None:
    events = [
        {"track_id": t, "kind": "like", "listener_id": f"web-{request:04d}", "timestamp": "2024-05-01T12:00:00Z"}
        for t in TRACKS[:PER_REQUEST]
    ]
    for attempt in range(60):
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/feedback",
                json={"events": events},
                timeout=30,
                headers={**AUTH, "Idempotency-Key": f"request-{request:04d}"},
            )
        except httpx.HTTPError:
            outcomes.append("connection error")
        else:
            if response.status_code == 200:
                return
            assert response.status_code >= 500, response.text  # only transient errors are retried
            outcomes.append(str(response.status_code))
        time.sleep(min(0.05 * (attempt + 1), 0.5))
    raise AssertionError(f"request {request} never succeeded: {outcomes[-5:]}")


def kill_one_worker(server_pid: int, url: str) -> bool:
    """SIGKILLs one uvicorn worker once a third of the requests are stored; whether one was found."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT count(*) FROM feedback_events WHERE source = 'api'")).scalar_one()
            if stored >= N_REQUESTS * PER_REQUEST // 3:
                break
            time.sleep(0.05)
    finally:
        engine.dispose()
    workers = [child for child in psutil.Process(server_pid).children() if "resource_tracker" not in " ".join(child.cmdline())]
    if not workers:
        return False
    os.kill(workers[0].pid, signal.SIGKILL)  # clients retry on the other worker (uvicorn restarts this one)
    return True


@pytest.mark.slow
@pytest.mark.postgres
def test_two_uvicorn_workers_and_an_importer_store_exactly_the_known_set(pg_store_url, pg_workspace, tiny_run, tmp_path):
    paths = write_import_files(tmp_path)
    port = free_port()
    env = child_env(
        ENCORE_SERVE_RUN=str(tiny_run), ENCORE_SERVE_WORKSPACE=str(pg_workspace), ENCORE_API_TOKEN=TOKEN, ENCORE_SERVE_WORKERS="1"
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--workers",
        "2",
        "--app-dir",
        str(HERE),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "serve_app:create_service",
    ]
    server = start_server(command, port, env)
    outcomes: list[str] = []
    try:
        queue = [r for r in range(N_REQUESTS)] * 2
        random.Random(3).shuffle(queue)
        shares = [queue[c::4] for c in range(4)]
        clients = [
            threading.Thread(target=lambda share=share: [_post_with_retries(port, r, outcomes) for r in share])
            for share in shares
        ]
        importers = [
            threading.Thread(
                target=run_importer,
                args=([*ENCORE, "feedback", "import", str(p), "-w", str(pg_workspace), "--source", "export"],),
            )
            for p in paths
        ]
        for thread in clients + importers:
            thread.start()
        killed = kill_one_worker(server.pid, pg_store_url)
        for thread in clients + importers:
            thread.join(300)
    finally:
        stop_process_group(server)
    check_known_set(pg_store_url)
    assert killed, "no uvicorn worker was running to kill"
    print(f"retried outcomes after a worker was killed: {sorted(set(outcomes))} ({len(outcomes)} retries)")
