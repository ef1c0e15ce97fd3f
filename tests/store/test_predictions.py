"""Predictions in the store, per-track summaries, SQL appeal evidence and given event keys (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import encore.store.engine as store_module
from encore.exceptions import FeedbackDataError, ParameterError, StoreError
from encore.targets.appeal import appeal_evidence, score_appeal


def _predictions(
    track_ids=("t1", "t1", "new-song"),
    kinds=("class", "tag", "score"),
    names=("rock", "guitar", "appeal"),
    values=(0.8, 0.4, 0.65),
) -> pd.DataFrame:
    return pd.DataFrame({"track_id": list(track_ids), "kind": list(kinds), "name": list(names), "value": list(values)})


def test_add_predictions_round_trips_and_needs_no_catalogue_track(filled_store):
    assert filled_store.add_predictions(_predictions(), run_id="cnn") == 3
    stored = filled_store.predictions()
    assert stored[["track_id", "run_id", "kind", "name"]].values.tolist() == [
        ["new-song", "cnn", "score", "appeal"],
        ["t1", "cnn", "class", "rock"],
        ["t1", "cnn", "tag", "guitar"],
    ]
    assert stored["value"].tolist() == pytest.approx([0.65, 0.8, 0.4])
    assert str(stored["created_at"].dt.tz) == "UTC"


def test_rerun_replaces_the_runs_rows_for_that_track_only(filled_store):
    filled_store.add_predictions(_predictions(), run_id="cnn")
    filled_store.add_predictions(_predictions(), run_id="rf")
    rerun = _predictions(track_ids=["t1"], kinds=["class"], names=["jazz"], values=[0.9])
    assert filled_store.add_predictions(rerun, run_id="cnn") == 1
    cnn = filled_store.predictions(run_id="cnn")
    assert sorted(map(tuple, cnn[["track_id", "name"]].values)) == [("new-song", "appeal"), ("t1", "jazz")]
    assert len(filled_store.predictions(run_id="rf")) == 3  # another run is untouched
    assert filled_store.add_predictions(rerun, run_id="cnn") == 1  # the same again: no duplicate
    assert len(filled_store.predictions(track_id="t1", run_id="cnn")) == 1
    assert filled_store.predictions(track_id="t1")["run_id"].tolist() == ["cnn", "rf", "rf"]


def test_repeated_key_in_one_call_keeps_the_last(filled_store):
    frame = _predictions(track_ids=["t1", "t1"], kinds=["class", "class"], names=["rock", "rock"], values=[0.1, 0.7])
    assert filled_store.add_predictions(frame, run_id="cnn") == 1
    assert filled_store.predictions()["value"].tolist() == [0.7]


@pytest.mark.parametrize(
    ("frame", "run_id", "error", "match"),
    [
        (_predictions(kinds=["class", "genre", "score"]), "cnn", FeedbackDataError, r"\['genre'\]"),
        (_predictions(values=[0.1, "high", 0.2]), "cnn", FeedbackDataError, "'high' is not a finite number"),
        (_predictions().drop(columns="name"), "cnn", FeedbackDataError, "missing column.*name"),
        (_predictions(), " ", ParameterError, "run_id"),
    ],
)
def test_add_predictions_rejects_bad_input_and_stores_nothing(filled_store, frame, run_id, error, match):
    with pytest.raises(error, match=match):
        filled_store.add_predictions(frame, run_id=run_id)
    assert filled_store.predictions().empty


def test_track_summary(filled_store):
    events = pd.DataFrame(
        {
            "track_id": "t1",  # 180 s: plays under 30 s are skips
            "listener_id": ["a", "b", "c", "a", "b", "a", "b", "c", None, "a", "b", "c"],
            "kind": ["like", "like", "dislike", "rating", "rating", "play", "play", "skip", "play", "tag", "tag", "tag"],
            "value_num": [1, 1, 1, 4, 5, 200_000, 10_000, 0, 29_999, None, None, None],
            "value_text": [None] * 9 + ["Hip-Hop", "hip hop", "seen live"],
            "timestamp": pd.date_range("2024-01-01", periods=12, freq="h", tz="UTC"),
        }
    )
    filled_store.add_events(events)
    filled_store.add_events(events.assign(track_id="t2").iloc[:1])
    summary = filled_store.track_summary("t1")
    assert summary == {
        "track_id": "t1",
        "in_catalogue": True,
        "n_events": 12,
        "n_listeners": 3,
        "counts": {"rating": 2, "like": 2, "dislike": 1, "play": 3, "skip": 1, "tag": 3, "play_count": 0},
        "like_rate": pytest.approx(2 / 3),
        "mean_rating": 4.5,
        "skip_rate": 0.75,
        "top_tags": [["hip hop", 2]],
    }
    empty = filled_store.track_summary("unknown")
    assert empty["in_catalogue"] is False and empty["n_events"] == 0
    assert empty["like_rate"] is None and empty["mean_rating"] is None and empty["skip_rate"] is None


def _keyed_events(keys) -> pd.DataFrame:
    return pd.DataFrame(
        {"track_id": "t1", "listener_id": "u1", "kind": "like", "timestamp": "2024-01-01T00:00:00Z", "event_key": keys}
    )


def test_given_event_keys_decide_duplicates(filled_store):
    # Same fields, different idempotency keys: two events; a missing key is computed.
    assert filled_store.add_events(_keyed_events(["req-1", "req-2", None])) == (3, 0)
    assert filled_store.add_events(_keyed_events(["req-2", "req-3", None])) == (1, 2)
    assert filled_store.counts()["feedback_events"] == 4


def test_too_long_event_key_is_refused(filled_store):
    with pytest.raises(FeedbackDataError, match="longer than 64.*sha256"):
        filled_store.add_events(_keyed_events(["x" * 65]))


def test_add_events_is_one_transaction(filled_store, monkeypatch):
    monkeypatch.setattr(store_module, "CHUNK_SIZE", 2)
    events = pd.concat([_keyed_events([f"k{i}" for i in range(5)]), _keyed_events(["bad"]).assign(track_id="nope")])
    with pytest.raises(StoreError, match="add the tracks first"):
        filled_store.add_events(events)  # the last chunk fails: the first chunks are rolled back
    assert filled_store.counts()["feedback_events"] == 0


def test_sql_appeal_evidence_equals_the_event_level_computation(filled_store):
    rng = np.random.default_rng(0)
    n = 400
    kinds = rng.choice(["like", "dislike", "rating", "play", "skip", "tag", "play"], n)
    events = pd.DataFrame(
        {
            "track_id": rng.choice(["t1", "t2", "t3", "t4"], n),  # t1 180 s (threshold 30 s), t4 95.5 s (28.65 s)
            "listener_id": np.where(rng.random(n) < 0.1, None, rng.choice([f"u{i}" for i in range(60)], n)),
            "kind": kinds,
            "value_num": np.where(
                kinds == "rating",
                rng.integers(1, 6, n),
                np.where(np.isin(kinds, ["play", "skip"]), rng.integers(0, 60_000, n), 1),
            ).astype(float),
            "value_text": np.where(kinds == "tag", "rock", None),
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
        }
    )
    events.loc[(events["kind"] == "play") & (np.arange(n) % 9 == 0), "value_num"] = np.nan  # unknown length
    # The SQL path counts every opinion, the event path each listener's latest: give
    # opinions their own listeners so the two must agree.
    opinion = events["kind"].isin(["like", "dislike", "rating"]) & events["listener_id"].notna()
    events.loc[opinion, "listener_id"] = [f"o{i}" for i in range(int(opinion.sum()))]
    filled_store.add_events(events)
    stored = filled_store.events()
    durations = filled_store.tracks().set_index("track_id")["duration"].dropna().to_dict()
    expected = appeal_evidence(stored, durations=durations)
    sql = filled_store.appeal_evidence()
    pd.testing.assert_frame_equal(sql, expected, check_dtype=False, check_names=False)
    assert score_appeal(sql)["appeal"].between(0, 1).all()


def test_add_events_reports_progress_per_chunk(filled_store, monkeypatch):
    monkeypatch.setattr(store_module, "CHUNK_SIZE", 4)
    written: list[int] = []
    assert filled_store.add_events(_keyed_events([f"k{i}" for i in range(10)]), progress=written.append) == (10, 0)
    assert written == [4, 4, 2]
