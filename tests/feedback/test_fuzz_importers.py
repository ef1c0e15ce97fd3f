"""Importers on random and mutated bytes: a result or an EncoreError, never anything else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encore.exceptions import EncoreError
from encore.feedback.importers import import_feedback, import_lastfm, import_spotify, import_tracks
from encore.store import Store

VALID_CSV = (
    b"track_id,listener_id,kind,value,timestamp\n"
    b"t1,u1,rating,4,2024-01-01T00:00:00Z\nt1,u2,tag,Hip-Hop,1700000000\nt1,,play,31000,2024-01-02\n"
)
VALID_SPOTIFY = json.dumps([{"endTime": "2020-01-05 21:44", "artistName": "A", "trackName": "B", "msPlayed": 5}]).encode()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def store():
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "s.sqlite") as opened:
        opened.add_tracks(pd.DataFrame({"track_id": ["t1"]}))
        yield opened


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    for position, byte in edits:
        if buffer:
            buffer[position % len(buffer)] = byte
    return bytes(buffer)


def _expect_only_encore_errors(call) -> None:
    try:
        call()
    except EncoreError:
        pass  # a clear, typed error is a fine answer to garbage


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz"]))
def test_random_bytes_as_event_files(store, tmp_path, data, suffix):
    path = tmp_path / f"events{suffix}"
    path.write_bytes(data)
    _expect_only_encore_errors(lambda: import_feedback(store, path))
    _expect_only_encore_errors(lambda: import_tracks(store, path))


@FUZZ
@given(changes=edits, encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_mutated_csv(store, tmp_path, changes, encoding):
    path = tmp_path / "events.csv"
    path.write_bytes(_mutate(VALID_CSV, changes))
    _expect_only_encore_errors(lambda: import_feedback(store, path, encoding=encoding))


@FUZZ
@given(changes=edits)
def test_mutated_spotify_export(store, tmp_path, changes):
    (tmp_path / "StreamingHistory0.json").write_bytes(_mutate(VALID_SPOTIFY, changes))
    _expect_only_encore_errors(lambda: import_spotify(store, tmp_path))


@FUZZ
@given(tags=st.binary(max_size=120), tagged=st.binary(max_size=200))
def test_random_lastfm_files(store, tmp_path, tags, tagged):
    for name, body in (
        ("tags.dat", b"tagID\ttagValue\n" + tags),
        ("user_taggedartists.dat", b"userID\tartistID\ttagID\tday\tmonth\tyear\n" + tagged),
        ("user_artists.dat", b"userID\tartistID\tweight\n2\t1\t3\n"),
        ("artists.dat", b"id\tname\n1\tA\n"),
    ):
        (tmp_path / name).write_bytes(body)
    _expect_only_encore_errors(lambda: import_lastfm(store, tmp_path))


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (VALID_CSV, "utf-16"),  # no byte-order mark: UnicodeError, not UnicodeDecodeError
        (b"tr\x0b\x00\x00\x00track", "utf-8"),  # \x0b splits a line for str.splitlines, not for a CSV reader
        (b"track_id,kind\rx,like\n", "utf-8"),  # a lone carriage return
        (VALID_CSV.replace(b"u2", b"u\x1c2"), "utf-8"),
    ],
)
def test_awkward_bytes_give_an_encore_error_or_a_report(store, tmp_path, data, encoding):
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    _expect_only_encore_errors(lambda: import_feedback(store, path, encoding=encoding))


_FIELD = st.text(alphabet=st.sampled_from(list("aab1  \t\x0b\x1c\x85\u00e9")), max_size=3)
_CSV_LIKE = st.integers(1, 3).flatmap(
    lambda n_columns: st.builds(
        lambda header, rows, ending, last: ending.join(",".join(row) for row in [header, *rows]) + (ending if last else ""),
        st.lists(st.sampled_from(["a", "b", "c", " d", "e\x0b"]), min_size=n_columns, max_size=n_columns),
        st.lists(st.lists(_FIELD, min_size=n_columns, max_size=n_columns), min_size=1, max_size=4),
        st.sampled_from(["\n", "\r\n"]),
        st.booleans(),
    )
)


@settings(max_examples=300, deadline=None)
@given(text=_CSV_LIKE | st.text(alphabet=st.sampled_from(list("ab1,\t \n\r\x0b\x1c\x85\u00e9")), max_size=60))
def test_the_fast_csv_path_reads_what_the_careful_one_reads(text):
    """Whenever the Arrow fast path takes a file, the csv-module path gives the same table."""
    import io

    import numpy as np

    from encore.feedback.importers.tables import _read_delimited, _read_simple_delimited

    for delimiter in (",", "\t"):
        fast = _read_simple_delimited(Path("f.csv"), text, delimiter)
        if fast is None:
            continue
        careful = _read_delimited(Path("f.csv"), io.StringIO(text, newline=""), delimiter)
        assert careful.rejects == [] and list(fast.frame.columns) == list(careful.frame.columns)
        assert fast.frame.index.tolist() == careful.frame.index.tolist()
        np.testing.assert_array_equal(
            fast.frame.to_numpy(dtype=object, na_value=None), careful.frame.to_numpy(dtype=object, na_value=None)
        )


def test_the_fast_csv_path_hands_awkward_files_to_the_careful_one():
    from encore.feedback.importers.tables import _read_simple_delimited

    for text in ("a,b\n1,2\n\n3,4\n", "a,b\n1,2\n  \n", "a,b\n1,2,3\n", "a,b\n1\r2,3\n", 'a,b\n"1",2\n', "a,a\n1,2\n", "a,b\n"):
        assert _read_simple_delimited(Path("f.csv"), text, ",") is None, repr(text)
    table = _read_simple_delimited(Path("f.csv"), "a,b\r\n1,\r\n3,4", ",")
    assert table is not None and table.frame.index.tolist() == [2, 3] and table.frame["b"].isna().tolist() == [True, False]
