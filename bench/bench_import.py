"""Feedback import and aggregation speed on SQLite: real exports and generated events.

Usage: python bench/bench_import.py [--data ../shared/data] [--events 10000000]
                                    [--import-events 1000000] [--quick] [--workdir DIR]

Times, each into a fresh SQLite store in --workdir (a temporary folder by default):

1. generated events (--import-events, half likes/ratings/tags, half plays) written as
   CSV and as Parquet, imported with ``import_feedback`` (validation, quarantine,
   event keys, deduplication); events per second, and the ratio to the reference
   ``plain-executemany``: ``pandas.read_csv`` plus ``sqlite3.executemany`` of the same
   rows with SHA-256 keys into a bare table with the same unique key and the store's
   SQLite settings, no validation, run in the same process (what is left of encore's
   time is validation, quarantine and normalisation);
2. the real exports in --data: Emotify annotations, Last.fm HetRec 2011 tags and play
   counts, a Spotify streaming history: import (events/s) and aggregation (appeal
   evidence and scores; tag vocabulary; skip rates);
3. aggregation of --events generated events (10 million by default; filled in SQL,
   not timed): ``Store.appeal_evidence`` + ``score_appeal`` against the reference
   ``plain-group-by`` (``SELECT track_id, kind, count(*) ... GROUP BY track_id, kind``).

--quick: 200,000 events for both, for a check that everything runs.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from encore.targets.appeal import score_appeal, skip_rates
from encore.feedback.importers import (
    import_feedback,
    import_feedback_frame,
    import_lastfm,
    import_spotify,
    import_tracks,
    read_emotify_annotations,
)
from encore.store import Store
from encore.targets.tags import tag_vocabulary

REPO = Path(__file__).resolve().parent.parent
N_TRACKS, N_LISTENERS = 20_000, 50_000


def generate(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` events in the canonical columns, on :data:`N_TRACKS` tracks."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(np.array(["like", "dislike", "rating", "tag", "play", "play", "skip", "play"]), n)
    values = np.where(
        kinds == "rating",
        rng.integers(1, 6, n).astype(str),
        np.where(
            np.isin(kinds, ["play", "skip"]),
            rng.integers(0, 400_000, n).astype(str),
            np.where(kinds == "tag", rng.choice(["rock", "Hip-Hop", "jazz", "calm"], n), "1"),
        ),
    )
    seconds = rng.integers(1_600_000_000, 1_700_000_000, n)
    return pd.DataFrame(
        {
            "track_id": np.char.add("t", rng.integers(0, N_TRACKS, n).astype(str)),
            "listener_id": np.char.add("u", rng.integers(0, N_LISTENERS, n).astype(str)),
            "kind": kinds,
            "value": values,
            "timestamp": pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def fresh_store(workdir: Path, name: str, tracks: list[str] | None = None) -> Store:
    path = workdir / f"{name}.sqlite"
    for leftover in workdir.glob(f"{name}.sqlite*"):
        leftover.unlink()
    store = Store.open(path)
    if tracks is not None:
        store.add_tracks(pd.DataFrame({"track_id": tracks}))
    return store


def reference_executemany(csv: Path, workdir: Path) -> float:
    """Seconds for the plain loader: read_csv, SHA-256 keys, executemany into a bare table."""
    path = workdir / "reference.sqlite"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    rows = [(hashlib.sha256("\x1f".join(row).encode()).hexdigest(), *row) for row in frame.itertuples(index=False, name=None)]
    conn = sqlite3.connect(path)
    for pragma in ("page_size=16384", "journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")  # the store's own settings: only the Python work differs
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, event_key TEXT UNIQUE, track_id TEXT, "
        "listener_id TEXT, kind TEXT, value TEXT, timestamp TEXT)"
    )
    conn.executemany(
        "INSERT INTO events (event_key, track_id, listener_id, kind, value, timestamp) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING",
        rows,
    )
    conn.commit()
    conn.close()
    return time.perf_counter() - start


def timed(what: str, fn, n: int | None = None):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    rate = f", {n / seconds:,.0f} events/s" if n else ""
    print(f"  {what}: {seconds:.2f} s{rate}", flush=True)
    return result, seconds


def bench_generated_import(n: int, workdir: Path) -> None:
    print(f"\n1. import of {n:,} generated events (reference: plain-executemany)")
    events = generate(n)
    csv, parquet = workdir / "events.csv", workdir / "events.parquet"
    events.to_csv(csv, index=False)
    events.to_parquet(parquet)
    tracks = [f"t{i}" for i in range(N_TRACKS)]
    reference = reference_executemany(csv, workdir)
    print(f"  plain-executemany (CSV): {reference:.2f} s, {n / reference:,.0f} events/s")
    for label, path in (("CSV", csv), ("Parquet", parquet)):
        store = fresh_store(workdir, f"import-{label}", tracks)
        report, seconds = timed(f"encore import_feedback ({label})", lambda: import_feedback(store, path), n)
        assert report.stored == n, (report.stored, n)
        print(f"    ratio to plain-executemany: {reference / seconds:.2f} (1.0 = as fast as the bare loader)")
        store.close()


def bench_real(data: Path, workdir: Path) -> None:
    print("\n2. real exports")
    emotify, lastfm, spotify = data / "emotify", data / "lastfm-hetrec2011", data / "spotify-streaming-history"
    if emotify.is_dir():
        store = fresh_store(workdir, "emotify")
        import_tracks(store, emotify, layout="emotify")
        events = read_emotify_annotations(emotify / "annotations.csv")
        report, _ = timed("Emotify annotations import", lambda: import_feedback_frame(store, events, name="emotify"), len(events))
        timed("Emotify appeal (SQL evidence + scores)", lambda: score_appeal(store.appeal_evidence()), report.stored)
    if lastfm.is_dir():
        store = fresh_store(workdir, "lastfm")
        timed("Last.fm artists as tracks", lambda: import_tracks(store, lastfm, layout="lastfm"))
        report, _ = timed("Last.fm tags + play counts import", lambda: import_lastfm(store, lastfm), 279_313)
        tags, _ = timed(
            "Last.fm tag vocabulary (read + normalise + merge)", lambda: tag_vocabulary(store.events(["tag"])), 186_479
        )
        print(f"    {len(tags):,} labels; top: {', '.join(tags['tag'].head(5))}")
    if spotify.is_dir():
        store = fresh_store(workdir, "spotify")
        timed("Spotify tracks", lambda: import_tracks(store, spotify, layout="spotify"))
        report, _ = timed("Spotify history import", lambda: import_spotify(store, spotify), 33_489)
        rates, _ = timed("Spotify skip rates", lambda: skip_rates(store.events(["play", "skip"])), report.stored)
        print(f"    overall skip rate {rates['skips'].sum() / rates['listens'].sum():.3f} on {len(rates):,} tracks")


def fill_in_sql(store: Store, n: int) -> None:
    """``n`` random events straight into the store's table (a recursive CTE, not timed)."""
    store.add_tracks(pd.DataFrame({"track_id": [f"t{i}" for i in range(N_TRACKS)]}))
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"""
            WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}),
            kinds(i, kind) AS (
                SELECT i, CASE (i * 2654435761) % 1000003 % 5 WHEN 0 THEN 'like' WHEN 1 THEN 'dislike'
                          WHEN 2 THEN 'rating' WHEN 3 THEN 'play' ELSE 'skip' END FROM seq)
            INSERT INTO feedback_events (event_key, track_id, listener_id, kind, value_num, value_text,
                                         timestamp, source, imported_at)
            SELECT printf('%064x', i), 't' || (abs(random()) % {N_TRACKS}), 'u' || (abs(random()) % {N_LISTENERS}),
                   kind, CASE kind WHEN 'rating' THEN 1 + abs(random()) % 5
                                   WHEN 'play' THEN abs(random()) % 400000 WHEN 'skip' THEN 1000 ELSE 1 END,
                   NULL, '2024-01-01 00:00:00.000000', 'bench', '2024-01-01 00:00:00.000000'
            FROM kinds""")


def bench_aggregation(n: int, workdir: Path) -> None:
    print(f"\n3. aggregation of {n:,} events on SQLite (reference: plain-group-by)")
    store = fresh_store(workdir, "aggregate")
    timed("filling the table in SQL (not part of the claim)", lambda: fill_in_sql(store, n))
    with store.engine.connect() as conn:
        _, reference = timed(
            "plain-group-by (count per track and kind)",
            lambda: conn.exec_driver_sql("SELECT track_id, kind, count(*) FROM feedback_events GROUP BY track_id, kind").all(),
            n,
        )
    evidence, seconds = timed("Store.appeal_evidence (SQL)", store.appeal_evidence, n)
    scores, scoring = timed("score_appeal (priors, shrinkage, combination)", lambda: score_appeal(evidence))
    total = seconds + scoring
    print(
        f"  appeal for {len(scores):,} tracks from {n:,} events in {total:.1f} s "
        f"({'within' if total <= 60 else 'OVER'} the 60 s budget); ratio to plain-group-by {total / reference:.2f}"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--events", type=int, default=10_000_000, help="events for the aggregation benchmark")
    parser.add_argument("--import-events", type=int, default=1_000_000, help="generated events to import")
    parser.add_argument("--quick", action="store_true", help="200,000 events for both")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: a temporary folder)")
    parser.add_argument("--skip-real", action="store_true", help="leave out the real exports")
    args = parser.parse_args()
    if args.quick:
        args.events = args.import_events = 200_000
    with tempfile.TemporaryDirectory(prefix="encore-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"stores in {workdir}; timings are wall-clock on this machine, one process")
        bench_generated_import(args.import_events, workdir)
        if not args.skip_real:
            if args.data.is_dir():
                bench_real(args.data, workdir)
            else:
                print(f"\n2. real exports: {args.data} not found, skipped (pass --data)")
        bench_aggregation(args.events, workdir)


if __name__ == "__main__":
    main()
