"""Single labels from listener votes and from catalogue label sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.labels import derive_single_labels, labels_from_catalogue

CLASSES = ["rock", "jazz", "pop"]


def _simulated_votes(seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """30 songs, 3 classes; 10 reliable listeners (80 % right), 5 adversarial ones who
    always name the next class, and 5 who vote at random; each votes on about half the songs."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=30)
    rows = []
    for listener in range(20):
        for song in range(30):
            if rng.random() < 0.5:
                continue
            if listener < 10:
                vote = truth[song] if rng.random() < 0.8 else rng.integers(0, 3)
            elif listener < 15:
                vote = (truth[song] + 1) % 3
            else:
                vote = rng.integers(0, 3)
            rows.append((f"s{song:02d}", f"u{listener}", "tag", CLASSES[vote].title()))
    events = pd.DataFrame(rows, columns=["track_id", "listener_id", "kind", "value_text"])
    return events, pd.Series([CLASSES[k] for k in truth], index=[f"s{i:02d}" for i in range(30)])


def _accuracy(labels: pd.DataFrame, truth: pd.Series) -> float:
    return float((labels.set_index("track_id")["label"].reindex(truth.index) == truth).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_listener_weighting_beats_plain_counts(seed):
    events, truth = _simulated_votes(seed)
    weighted = derive_single_labels(events, CLASSES, min_margin=0.0, min_votes=1)
    plain = derive_single_labels(events, CLASSES, min_margin=0.0, min_votes=1, weight_listeners=False)
    assert _accuracy(weighted, truth) >= 0.9
    assert _accuracy(weighted, truth) >= _accuracy(plain, truth)
    assert weighted.columns.tolist() == ["track_id", "label", "confidence", "margin", "n_votes"]
    assert (weighted["confidence"] >= weighted["margin"]).all()


def test_ambiguous_and_thin_songs_are_left_unlabelled():
    rows = [("even", f"e{i}", "tag", "rock" if i % 2 else "jazz") for i in range(6)]
    rows += [("clear", f"u{i}", "tag", "pop") for i in range(5)] + [("clear", "u5", "tag", "rock")]
    rows += [("thin", "u0", "tag", "pop"), ("thin", "u1", "tag", "pop")]
    events = pd.DataFrame(rows, columns=["track_id", "listener_id", "kind", "value_text"])
    labels = derive_single_labels(events, CLASSES, min_margin=0.2, min_votes=3).set_index("track_id")
    assert labels.loc["clear", "label"] == "pop"
    assert labels.loc["even", "label"] is None and labels.loc["even", "margin"] == pytest.approx(0.0)
    assert labels.loc["thin", "label"] is None and labels.loc["thin", "n_votes"] == 2
    assert labels.loc["even", "n_votes"] == 6


def test_plain_counts_without_listener_ids():
    events = pd.DataFrame(
        {"track_id": ["s1"] * 4, "kind": "tag", "value_text": ["Rock", "rock", "ROCK", "jazz"], "listener_id": None}
    )
    labels = derive_single_labels(events, CLASSES, min_votes=3)
    assert labels.to_dict("records") == [{"track_id": "s1", "label": "rock", "confidence": 0.75, "margin": 0.5, "n_votes": 4}]


def test_votes_for_other_tags_are_ignored_and_no_votes_gives_empty():
    events = pd.DataFrame({"track_id": ["s1"], "listener_id": ["u1"], "kind": ["tag"], "value_text": ["sad"]})
    labels = derive_single_labels(events, CLASSES)
    assert labels.empty and labels.columns.tolist() == ["track_id", "label", "confidence", "margin", "n_votes"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": ["rock"]}, "at least two"),
        ({"classes": ["Hip-Hop", "hiphop"]}, "same tag"),
        ({"min_margin": 1.5}, "min_margin=1.5"),
        ({"min_votes": 0}, "min_votes=0"),
    ],
)
def test_bad_options(kwargs, match):
    events = pd.DataFrame({"track_id": ["s1"], "listener_id": ["u1"], "kind": ["tag"], "value_text": ["rock"]})
    options = {"classes": CLASSES, **kwargs}
    with pytest.raises(ParameterError, match=match):
        derive_single_labels(events, options.pop("classes"), **options)


def test_labels_from_catalogue(filled_store):
    filled_store.add_catalogue_labels("genre", pd.DataFrame({"track_id": ["t1", "t2", "t2"], "label": ["rock", "pop", "jazz"]}))
    labels = labels_from_catalogue(filled_store, "genre").set_index("track_id")
    assert labels.loc["t1"].to_dict() == {"label": "rock", "confidence": 1.0, "margin": 1.0, "n_votes": 1}
    assert labels.loc["t2", "label"] is None and labels.loc["t2", "n_votes"] == 2
    with pytest.raises(ParameterError, match="'mood'"):
        labels_from_catalogue(filled_store, "mood")


def test_a_store_of_items_without_audio_has_nothing_to_train_on(store):
    """Spotify or Last.fm items alone (no audio file): `encore labels` says so and how to fix it,
    instead of writing a manifest training would fail on."""
    from encore.config import LabelsConfig
    from encore.targets.build import build_manifest

    store.add_tracks(pd.DataFrame({"track_id": ["spotify-a", "spotify-b"], "title": ["A", "B"]}))
    store.add_events(
        pd.DataFrame(
            {
                "track_id": ["spotify-a", "spotify-b"],
                "kind": ["like", "dislike"],
                "listener_id": ["u1", "u1"],
                "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
            }
        )
    )
    with pytest.raises(ParameterError, match=r"none of the store's 2 items has an audio file.*encore import FOLDER"):
        build_manifest(store, LabelsConfig())
