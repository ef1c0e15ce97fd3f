"""``kill -9`` during ``encore feedback import``, then rerun: every good row once, counts that add up.

A generated CSV of events (some rows bad on purpose, some repeated within the file) is
imported by a real ``encore feedback import`` subprocess into a SQLite or PostgreSQL
workspace. The first import is killed with SIGKILL while its insert is running (seen
from outside: SQLite's write-ahead log growing, PostgreSQL's insert lock held); a second
is killed at a random moment. While the writer runs, the event count seen from another
connection must only ever be 0 or the full file. The rerun then reports
``read N, stored S, duplicate D, quarantined Q`` with S + D + Q = N and S equal to what
the killed runs had not stored; the store ends with exactly the good rows, each once,
and the quarantine table with each bad row once.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from encore.store import Store

from .procs import ENCORE, child_env, init_workspace, with_app_name

N_ROWS = 40_000
N_TRACKS = 40
_EVENTS_LOCK = 0x656E03  # encore.store's advisory lock key for feedback_events


def write_events_csv(path: Path, n_rows: int, seed: int = 0) -> tuple[set[int], int, int]:
    """A CSV of play events whose ``value`` numbers the row; every 97th row is bad, every 89th repeats one.

    Returns:
        The values of the good rows, the number of bad rows, and the number of repeated good rows.
    """
    rng = random.Random(seed)
    values = list(range(n_rows))
    rows = {
        "track_id": [f"t{v % N_TRACKS}" for v in values],
        "listener_id": [f"u{v % 500}" for v in values],
        "kind": ["play"] * n_rows,
        "value": [str(v) for v in values],
        "timestamp": [f"2024-01-01T00:{(v // 60) % 60:02d}:{v % 60:02d}Z" for v in values],
    }
    frame = pd.DataFrame(rows)
    bad = frame.index[frame.index % 97 == 5]
    reasons = ["track_id", "value", "timestamp"]
    for i, position in enumerate(bad):
        column = reasons[i % 3]
        frame.loc[position, column] = {"track_id": "no-such-track", "value": "-3", "timestamp": "yesterday"}[column]
    repeats = [i for i in range(n_rows) if i % 89 == 7 and i % 97 != 5]
    frame = pd.concat([frame, frame.loc[repeats]]).sample(frac=1.0, random_state=rng.randrange(2**31))
    frame.to_csv(path, index=False)
    good = {v for v in values if v % 97 != 5}
    return good, len(bad), len(repeats)


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _insert_running(engine: Engine, store_url: str) -> bool:
    """Whether the importer's bulk insert is under way, judged from outside the process."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            held = conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND granted"),
                {"key": _EVENTS_LOCK},
            ).scalar_one()
        return held > 0
    wal = Path(store_url.removeprefix("sqlite:///") + "-wal")
    return wal.exists() and wal.stat().st_size > 300_000


def _run_and_kill(
    command: list[str], engine: Engine, store_url: str, full: int, *, when: float | None
) -> tuple[bool, float, list[int]]:
    """Runs the import and SIGKILLs it: once its insert runs (``when`` None) or after ``when`` seconds.

    Returns:
        Whether it was killed before finishing, the seconds it ran, and every event count
        seen while it ran.
    """
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    seen: list[int] = []
    started = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < 240:
            seen.append(_count(engine, "feedback_events"))
            if when is None and _insert_running(engine, store_url):
                break
            if when is not None and time.monotonic() - started >= when:
                break
            time.sleep(0.01)
    finally:
        killed = process.poll() is None
        if killed:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    elapsed = time.monotonic() - started
    seen.append(_count(engine, "feedback_events"))
    assert set(seen) <= {0, full}, f"a partial import was visible: counts {sorted(set(seen))}"
    return killed, elapsed, seen


@pytest.mark.slow
def test_import_killed_mid_way_reruns_to_every_good_row_once(any_store_url, tmp_path):
    store_url = with_app_name(any_store_url, "encore-rel-import")
    ws = init_workspace(tmp_path / "ws", store_url)
    with Store.open(store_url) as store:
        store.add_tracks(pd.DataFrame({"track_id": [f"t{i}" for i in range(N_TRACKS)]}))
    path = tmp_path / "events.csv"
    good, n_bad, n_repeats = write_events_csv(path, N_ROWS)
    n_read = N_ROWS + n_repeats
    command = [*ENCORE, "feedback", "import", str(path), "-w", str(ws)]
    engine = create_engine(any_store_url)
    try:
        killed_in_insert, to_insert, seen = _run_and_kill(command, engine, any_store_url, len(good), when=None)
        # a second run, killed at a random moment before about when the first one was inserting
        moment = random.Random().uniform(0.1, 1.5 * to_insert)
        killed_at_random, _, _ = _run_and_kill(command, engine, any_store_url, len(good), when=moment)
        partial = _count(engine, "feedback_events")
        quarantined_before = _count(engine, "quarantine")
        assert partial in (0, len(good)) and quarantined_before in (0, n_bad)

        rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, env=child_env())
        assert rerun.returncode == 0, rerun.stderr
        counts = re.search(r"read (\d+), stored (\d+), duplicate (\d+), quarantined (\d+)", rerun.stdout)
        assert counts, rerun.stdout
        read, stored, duplicate, quarantined = map(int, counts.groups())
        assert (read, stored, duplicate, quarantined) == (n_read, len(good) - partial, n_read - n_bad - stored, n_bad)

        again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=child_env())
        assert f"read {n_read}, stored 0, duplicate {n_read - n_bad}, quarantined {n_bad}" in again.stdout
        with Store.open(any_store_url) as store:
            events = store.events()
            quarantine = store.quarantined()
    finally:
        engine.dispose()
    values = events["value_num"].astype(int)
    assert len(events) == len(good) and set(values) == good and not values.duplicated().any()
    assert len(quarantine) == n_bad and not quarantine["line"].duplicated().any()
    print(
        f"kill in insert: {killed_in_insert} (counts seen {sorted(set(seen))}); random kill at {moment:.2f} s: {killed_at_random}; "
        f"before the rerun {partial} of {len(good)} events stored"
    )
