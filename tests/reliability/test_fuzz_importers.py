"""Fuzzing every feedback importer with random and mutated bytes (hypothesis; atheris where installed).

The contract: a file is either imported with a report whose counts add up
(``read == stored + duplicate + quarantined``, every quarantined row in the store's
quarantine table) or refused with an :class:`~encore.exceptions.EncoreError`; never
another exception, never a hang (each call runs under a 20 s alarm, which only a hang
reaches). Formats: generic CSV, TSV, JSON Lines, Parquet, gzip; the named exports
Emotify, Last.fm HetRec and Spotify streaming history. Bounded to a few seconds; raise
``ENCORE_FUZZ_EXAMPLES`` for a longer local run.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encore.exceptions import EncoreError
from encore.feedback.importers import (
    ImportReport,
    import_feedback,
    import_feedback_frame,
    import_lastfm,
    import_spotify,
    read_emotify_annotations,
)
from encore.store import Store

from .procs import HERE, child_env

EXAMPLES = int(os.environ.get("ENCORE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="ENCORE_FUZZ_EXAMPLES" not in os.environ,  # CI: the same bounded run every time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HANG_SECONDS = 20

EVENTS_CSV = (
    b"track_id,listener_id,kind,value,timestamp,event_key\n"
    b't1,u1,rating,4.5,2024-01-01T00:00:00Z,\n"t1",u2,tag,"Hip, Hop",1700000000,\n'
    b"t2,,play,31000,2024-01-02,k-1\nt2,u3,skip,,1700000000000,\nt1,u4,like,,2024-01-03T10:00:00+02:00,\n"
)
EMOTIFY_CSV = (
    b"track id, genre, amazement, solemnity, tenderness, nostalgia, calmness, power, joyful_activation, "
    b"tension, sadness, mood, liked, disliked, age, gender, mother tongue\n"
    b"1,classical,0,1,0,0,1,0,0,0,0,3,1,0,21,1,English\n2,classical,1,0,0,0,0,1,1,0,0,4,0,1,30,0,Dutch\n"
)
SPOTIFY_JSON = json.dumps(
    [
        {"endTime": "2020-01-05 21:44", "artistName": "A", "trackName": "B", "msPlayed": 5000},
        {"endTime": "2020-01-06 08:00", "artistName": "A", "trackName": "C", "msPlayed": 90000},
    ]
).encode()
LASTFM_FILES = {
    "tags.dat": b"tagID\ttagValue\n1\trock\n2\tchill out\n",
    "user_taggedartists.dat": b"userID\tartistID\ttagID\tday\tmonth\tyear\n2\t1\t1\t1\t4\t2009\n3\t1\t2\t1\t4\t2010\n",
    "user_artists.dat": b"userID\tartistID\tweight\n2\t1\t13883\n",
    "artists.dat": b"id\tname\turl\tpictureURL\n1\tMALICE MIZER\thttp://x\thttp://y\n",
}


def _parquet_seed() -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(io.BytesIO(EVENTS_CSV), dtype=str).to_parquet(buffer)
    return buffer.getvalue()


PARQUET = _parquet_seed()


class Hang(Exception):
    """An import ran past the alarm: treated as a failure, never as an EncoreError."""


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def ring(*_: object) -> None:
        raise Hang(f"an import ran over {seconds} s on a tiny input")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    """A SQLite store knowing the tracks the seeds name (t1, t2, Emotify 1-2, Last.fm artist 1, Spotify A - B)."""
    from encore.feedback.importers.lastfm import lastfm_track_id
    from encore.feedback.importers.spotify import spotify_track_id

    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "fuzz.sqlite") as opened:
        ids = ["t1", "t2", "1", "2", *lastfm_track_id(pd.Series(["1"])), spotify_track_id("A", "B")]
        opened.add_tracks(pd.DataFrame({"track_id": ids}))
        yield opened


def check_import(store: Store, call: Callable[[], ImportReport]) -> ImportReport | None:
    """Runs an import: a consistent report, or an EncoreError (None); anything else fails the test."""
    before = store.counts()["quarantine"]
    try:
        with alarm(HANG_SECONDS):
            report = call()
    except EncoreError as error:
        assert str(error), "an EncoreError must say what was wrong"
        return None
    assert report.read == report.stored + report.duplicate + report.quarantined, report
    assert report.quarantined == len(report.quarantine)
    assert all(row.reason and row.line >= 1 for row in report.quarantine)
    assert store.counts()["quarantine"] - before <= report.quarantined  # repeats are not recorded twice
    return report


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Applies (position, op, byte) edits: 0 overwrite, 1 insert, 2 delete, 3 duplicate a slice."""
    buffer = bytearray(data)
    for position, op, byte in edits:
        at = position % (len(buffer) + 1)
        if op == 0 and buffer:
            buffer[at % len(buffer)] = byte
        elif op == 1:
            buffer.insert(at, byte)
        elif op == 2 and buffer:
            del buffer[at % len(buffer)]
        elif op == 3:
            buffer[at:at] = buffer[at : at + byte]
    return bytes(buffer)


edits = st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 3), st.integers(0, 255)), max_size=16)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".txt"]))
def test_random_bytes_in_every_generic_format(store, tmp_path, data, suffix):
    path = tmp_path / f"events{suffix}"
    path.write_bytes(data)
    check_import(store, lambda: import_feedback(store, path))


@FUZZ
@given(
    changes=edits,
    seed=st.sampled_from(["csv", "tsv", "jsonl", "parquet", "gz"]),
    encoding=st.sampled_from(["utf-8", "latin-1", "cp1252"]),
)
def test_mutated_valid_event_files(store, tmp_path, changes, seed, encoding):
    import gzip

    frame = pd.read_csv(io.BytesIO(EVENTS_CSV), dtype=str)
    seeds = {
        "csv": EVENTS_CSV,
        "tsv": frame.to_csv(sep="\t", index=False).encode(),
        "jsonl": frame.to_json(orient="records", lines=True).encode(),
        "parquet": PARQUET,
        "gz": gzip.compress(EVENTS_CSV),
    }
    suffix = {"gz": ".csv.gz"}.get(seed, f".{seed}")
    path = tmp_path / f"events{suffix}"
    path.write_bytes(mutate(seeds[seed], changes))
    check_import(store, lambda: import_feedback(store, path, encoding=encoding))


def test_utf16_without_a_byte_order_mark_is_a_feedback_error(store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(EVENTS_CSV)  # plain ASCII, read as UTF-16
    # A UTF-16 decode without a byte-order mark raises the base UnicodeError: it must become a FeedbackDataError.
    assert check_import(store, lambda: import_feedback(store, path, encoding="utf-16")) is None


# Found by atheris: str.splitlines() also splits on \x0b, \x0c, \x1c-\x1e and \x85, which Arrow's
# CSV reader does not; the fast CSV path must not let pyarrow's ArrowInvalid escape.
def test_vertical_tab_in_a_header_is_a_feedback_error_or_a_report(store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"tr\x0b\x00\x00\x00track")  # the input atheris found
    check_import(store, lambda: import_feedback(store, path))


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["t1", "t2", "rating", "play", "tag", "like", "5", "-1", "nan", "inf", "1e309", "2024-02-30", "1700000000", "\x00", ""]
    ),
)


@FUZZ
@given(
    rows=st.lists(
        st.fixed_dictionaries({c: cells for c in ("track_id", "listener_id", "kind", "value", "timestamp")}),
        min_size=1,
        max_size=25,
    )
)
def test_well_formed_files_of_random_values_import_with_a_clean_report(store, tmp_path, rows):
    path = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(path, index=False, lineterminator="\r\n")  # RFC 4180: CR, LF in fields quoted
    report = check_import(store, lambda: import_feedback(store, path))
    assert report is not None, "a well-formed CSV with the canonical columns must import (bad rows quarantined)"
    assert report.read == len(rows)


@FUZZ
@given(changes=edits)
def test_mutated_emotify_annotations(store, tmp_path, changes):
    path = tmp_path / "annotations.csv"
    path.write_bytes(mutate(EMOTIFY_CSV, changes))
    check_import(store, lambda: import_feedback_frame(store, read_emotify_annotations(path), name=str(path)))


@FUZZ
@given(changes=edits, data=st.binary(max_size=200), random_file=st.booleans())
def test_mutated_spotify_history(store, tmp_path, changes, data, random_file):
    (tmp_path / "StreamingHistory0.json").write_bytes(data if random_file else mutate(SPOTIFY_JSON, changes))
    check_import(store, lambda: import_spotify(store, tmp_path))


@FUZZ
@given(changes=edits, target=st.sampled_from(sorted(LASTFM_FILES)), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_mutated_lastfm_folder(store, tmp_path, changes, target, encoding):
    for name, body in LASTFM_FILES.items():
        (tmp_path / name).write_bytes(mutate(body, changes) if name == target else body)
    check_import(store, lambda: import_lastfm(store, tmp_path, tags_encoding=encoding))


@pytest.mark.parametrize("target", ["csv", "audio"])
def test_atheris_bounded_fuzz(target, tmp_path):
    """libFuzzer-guided fuzzing (atheris) of the CSV importer and load_audio, 2000 runs each."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    runs = os.environ.get("ENCORE_ATHERIS_RUNS", "2000")
    command = [
        sys.executable,
        str(HERE / "atheris_harness.py"),
        target,
        f"-runs={runs}",
        "-max_total_time=60",
        "-timeout=20",
        "-rss_limit_mb=4096",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=child_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done" in result.stderr or "stat::number_of_executed_units" in result.stderr, result.stderr[-2000:]
