"""The feedback store on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import pandas as pd
import numpy as np
import pytest

import encore.store.engine as store_module
from encore.exceptions import FeedbackDataError, ParameterError, StoreError
from encore.store.schema import QuarantinedRow
from encore.store import Store


def _events(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "track_id": ["t1", "t1", "t2", "t3"],
            "listener_id": ["u1", "u2", None, "u1"],
            "kind": ["rating", "like", "play", "tag"],
            "value_num": [4.5, 1.0, 125000.0, None],
            "value_text": [None, None, None, "Hip-Hop"],
            "timestamp": ["2024-03-01T12:00:00Z", "2024-03-01 13:00:00", "2024-03-01T15:00:00+02:00", "2024-03-02T00:00:00.250Z"],
            "source": ["test"] * 4,
        }
    )
    return frame.assign(**overrides)


def test_open_creates_empty_tables(store):
    assert store.counts() == {
        "tracks": 0,
        "catalogue_labels": 0,
        "feedback_events": 0,
        "quarantine": 0,
        "predictions": 0,
    }
    assert store.events().columns.tolist() == [
        "track_id",
        "listener_id",
        "kind",
        "value_num",
        "value_text",
        "timestamp",
        "source",
    ]
    assert store.tracks().empty and store.quarantined().empty


def test_open_plain_path_is_sqlite_in_wal_mode_with_foreign_keys(tmp_path):
    path = tmp_path / "nested" / "feedback.db"
    with Store.open(path) as store:
        assert store.url == f"sqlite:///{path.resolve().as_posix()}"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert path.is_file()
    assert {row[0] for row in sqlite3.connect(path).execute("select name from sqlite_master where type='table'")} >= {
        "tracks",
        "catalogue_labels",
        "feedback_events",
        "quarantine",
    }


def test_open_unreachable_server_names_url_without_password():
    url = "postgresql+psycopg://someone:secret@127.0.0.1:1/nothing?connect_timeout=2"
    with pytest.raises(StoreError, match="127.0.0.1:1/nothing") as caught:
        Store.open(url)
    assert "secret" not in str(caught.value)


def test_open_unsupported_dialect_raises_store_error():
    with pytest.raises(StoreError, match="nosuchdb"):
        Store.open("nosuchdb://host/db")


def test_add_tracks_leaves_existing_ids_alone(store, tracks):
    assert store.add_tracks(tracks) == (4, 0)
    changed = tracks.assign(artist="Someone Else")
    assert store.add_tracks(pd.concat([changed, tracks.iloc[:1]])) == (0, 5)
    stored = store.tracks()
    assert stored["artist"].tolist() == ["Ann", "Ann", "Bob", "Cy"]
    assert stored["duration"].isna().tolist() == [False, False, True, False]
    assert str(stored["added_at"].dt.tz) == "UTC"


def test_add_tracks_rejects_bad_duration(store):
    with pytest.raises(FeedbackDataError, match="duration='long'"):
        store.add_tracks(pd.DataFrame({"track_id": ["x"], "duration": ["long"]}))


def test_add_events_round_trips_in_utc(filled_store):
    assert filled_store.add_events(_events()) == (4, 0)
    events = filled_store.events()
    assert events["kind"].tolist() == ["rating", "like", "play", "tag"]
    assert events["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01T12:00:00Z"),
        pd.Timestamp("2024-03-01T13:00:00Z"),  # naive means UTC
        pd.Timestamp("2024-03-01T13:00:00Z"),  # +02:00 converted
        pd.Timestamp("2024-03-02T00:00:00.250Z"),
    ]
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert events["listener_id"].isna().tolist() == [False, False, True, False]
    assert events["value_num"].iloc[2] == 125000.0
    assert events["value_text"].iloc[3] == "Hip-Hop"
    assert events["source"].eq("test").all()


def test_add_events_twice_stores_nothing_new(filled_store):
    events = _events()
    assert filled_store.add_events(pd.concat([events, events.iloc[:2]])) == (4, 2)
    same_instants = events.assign(
        timestamp=["2024-03-01T13:00:00+01:00", "2024-03-01T13:00:00Z", "2024-03-01T13:00:00Z", "2024-03-02T00:00:00.250+00:00"]
    )
    assert filled_store.add_events(same_instants) == (0, 4)
    assert filled_store.counts()["feedback_events"] == 4


def test_add_events_in_chunks(filled_store, monkeypatch):
    monkeypatch.setattr(store_module, "CHUNK_SIZE", 7)
    events = pd.DataFrame(
        {
            "track_id": "t1",
            "listener_id": [f"u{i}" for i in range(50)],
            "kind": "play",
            "value_num": range(50),
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    assert filled_store.add_events(events) == (50, 0)
    assert filled_store.add_events(events) == (0, 50)


def test_events_filters_kinds(filled_store):
    filled_store.add_events(_events())
    assert filled_store.events(["tag", "like"])["kind"].tolist() == ["like", "tag"]
    with pytest.raises(ParameterError, match="'hug'"):
        filled_store.events(["hug"])


def test_durations_and_artist_fill_go_through_the_store_and_fail_as_store_errors(store, tracks):
    store.add_tracks(tracks.assign(artist=[None, "Ann", None, "Cy"]))
    durations = store.track_durations()
    assert durations["t1"] == 180.0 and durations["t4"] == 95.5 and np.isnan(durations["t3"])
    assert store.track_durations(["t2", "t4", "absent"]) == {"t2": 200.0, "t4": 95.5}
    store.fill_artists(pd.DataFrame({"track_id": ["t1", "t2"], "artist": ["Zed", "Not Ann"]}))
    assert store.tracks()["artist"].tolist()[:2] == ["Zed", "Ann"]  # a named artist is kept
    # a database that fails under the importer (here its tracks table gone, as a dropped
    # connection would) is a StoreError naming the store, which the CLI prints as one line
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE tracks RENAME TO tracks_gone")
    with pytest.raises(StoreError, match="cannot read the track durations from the store at"):
        store.track_durations()
    with pytest.raises(StoreError, match="cannot write the artists to the store at .*nothing of this write was stored"):
        store.fill_artists(pd.DataFrame({"track_id": ["t3"], "artist": ["Bob"]}))


def test_add_events_unknown_track_raises_and_stores_nothing(filled_store):
    with pytest.raises(StoreError, match="add the tracks first"):
        filled_store.add_events(_events(track_id=["t1", "t1", "t2", "nope"]))
    assert filled_store.counts()["feedback_events"] == 0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"kind": ["rating", "like", "hug", "tag"]}, "'hug'"), ({"timestamp": None}, "timestamp")],
)
def test_add_events_rejects_bad_input(filled_store, overrides, match):
    with pytest.raises(FeedbackDataError, match=match):
        filled_store.add_events(_events(**overrides))


def test_add_events_missing_column(filled_store):
    with pytest.raises(FeedbackDataError, match=r"\['kind'\]"):
        filled_store.add_events(_events().drop(columns="kind"))


def test_catalogue_label_sets_are_versioned(filled_store):
    labels = pd.DataFrame({"track_id": ["t1", "t2", "t2", "t3"], "label": ["rock", "pop", "rock", ""]})
    assert filled_store.add_catalogue_labels("genre", labels) == 3
    assert filled_store.add_catalogue_labels("genre", labels.iloc[:1].assign(label="jazz")) == 1
    assert filled_store.add_catalogue_labels("mood", labels.iloc[:1], version=3) == 1
    assert filled_store.add_catalogue_labels("mood", labels.iloc[:1], version=3) == 0
    assert filled_store.label_sets() == {"genre": [1, 2], "mood": [3]}
    assert filled_store.catalogue_labels("genre").to_dict("list") == {"track_id": ["t1"], "label": ["jazz"]}
    assert filled_store.catalogue_labels("genre", 1)["label"].tolist() == ["rock", "pop", "rock"]
    with pytest.raises(ParameterError, match=r"'nope'.*\['genre', 'mood'\]"):
        filled_store.catalogue_labels("nope")
    with pytest.raises(ParameterError, match="version=9"):
        filled_store.catalogue_labels("genre", 9)
    with pytest.raises(ParameterError, match="version=0"):
        filled_store.add_catalogue_labels("genre", labels, version=0)


def test_quarantine_round_trips_without_repeats(store):
    rows = [QuarantinedRow("a.csv", 3, "bad rating", "t1,u,rating,9"), QuarantinedRow("a.csv", 7, "x", "y")]
    assert store.add_quarantine(rows) == 2
    assert store.add_quarantine(rows) == 0
    frame = store.quarantined()
    assert frame[["source_file", "line", "reason", "raw"]].to_dict("records")[0] == {
        "source_file": "a.csv",
        "line": 3,
        "reason": "bad rating",
        "raw": "t1,u,rating,9",
    }
    assert store.counts()["quarantine"] == 2


def test_close_and_reuse(store_url):
    store = Store.open(store_url)
    store.close()
    assert store.counts()["tracks"] == 0  # reconnects on use
    store.close()


def test_event_keys_are_the_documented_sha256_of_the_normalised_fields():
    import hashlib
    from datetime import datetime, timedelta, timezone

    from encore.store.dbvalues import KEY_SEPARATOR, compute_event_keys

    events = pd.DataFrame(
        {
            "track_id": ["t1", "t2", "t3"],
            "listener_id": pd.Series(["u1", None, "u9"], dtype="str"),
            "kind": ["rating", "play", "tag"],
            "value_num": [4.5, 125000.0, float("nan")],
            "value_text": pd.Series([None, None, "Hip-Hop"], dtype="str"),
            "timestamp": pd.to_datetime(
                ["2024-03-01T12:00:00Z", "1999-12-31T23:59:59.123456Z", "2024-03-02T00:00:00Z"], utc=True, format="ISO8601"
            ),
            "source": ["shop", "", "shop"],
        }
    )
    expected = []
    for row in events.itertuples(index=False):
        micros = (row.timestamp.to_pydatetime() - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        value = repr(float(row.value_num)) if row.value_num == row.value_num else row.value_text
        fields = [
            row.track_id,
            row.listener_id if isinstance(row.listener_id, str) else "",
            row.kind,
            value,
            str(micros),
            row.source,
        ]
        expected.append(hashlib.sha256(KEY_SEPARATOR.join(fields).encode()).hexdigest())
    assert compute_event_keys(events) == expected


def test_sqlite_datetimes_are_sqlalchemys_own_text():
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from encore.store.dbvalues import sqlite_datetimes

    values = pd.Series(
        pd.to_datetime(
            ["2024-03-01T12:00:00Z", "1999-12-31T23:59:59.123456Z", "2024-03-01T12:00:00Z", "1970-01-01T00:00:00.000001+02:00"],
            utc=True,
            format="ISO8601",
        )
    )
    process = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    expected = [process(value.to_pydatetime().replace(tzinfo=None)) for value in values]
    assert sqlite_datetimes(values).tolist() == expected
    assert sqlite_datetimes(values.iloc[:0]).tolist() == []


def test_events_come_back_in_time_order_whatever_order_they_were_stored_in(filled_store):
    later, earlier = _events().iloc[[3, 2, 1, 0]], _events().iloc[[0]]
    filled_store.add_events(later)  # one batch: on SQLite it is written in event_key order
    events = filled_store.events()
    assert events["timestamp"].is_monotonic_increasing
    # the same instant (13:00 UTC twice): by track, then listener
    assert events[["track_id", "kind"]].values.tolist() == [["t1", "rating"], ["t1", "like"], ["t2", "play"], ["t3", "tag"]]
    assert filled_store.add_events(earlier) == (0, 1)
