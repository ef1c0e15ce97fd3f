"""The labelling queue's ranking, and paired comparisons across runs and taxonomies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from encore.evaluate.compare import compare_pair, compare_results
from encore.evaluate.queue import QUEUE_COLUMNS, build_label_queue, uncertainty, unlabelled_tracks
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError


class FixedPredictor:
    """Returns given class probabilities, one row per waveform (the waveform holds its row index)."""

    label_names = ["rock", "jazz", "pop"]

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float32)

    def predict_arrays(self, waveforms):
        return {"class_probs": self.probs[[int(w[0]) for w in waveforms]]}


PROBS = [[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.5, 0.45, 0.05], [0.6, 0.2, 0.2]]


def test_uncertainty_orders_songs():
    entropy = uncertainty(np.array(PROBS), by="entropy")
    margin = uncertainty(np.array(PROBS), by="margin")
    assert np.argmax(entropy) == 1 and np.argmin(entropy) == 0
    assert np.argsort(-margin)[:2].tolist() == [1, 2]  # near-ties first
    assert 0 <= entropy.min() and entropy.max() <= 1 + 1e-9
    with pytest.raises(ParameterError, match="by='variance'"):
        uncertainty(np.array(PROBS), by="variance")
    with pytest.raises(ParameterError, match="shape"):
        uncertainty(np.ones(3))


def test_queue_is_ranked_and_ready_to_import():
    songs = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "artist": "x", "title": "t", "path": "p"})
    queue = build_label_queue(FixedPredictor(PROBS), songs, [np.array([i]) for i in range(4)], by="margin", labeller="ann")
    assert list(queue.columns) == list(QUEUE_COLUMNS)
    assert queue["track_id"].tolist()[:2] == ["b", "c"] and queue["rank"].tolist() == [1, 2, 3, 4]
    assert (queue["label"] == "").all() and (queue["kind"] == "tag").all() and (queue["listener_id"] == "ann").all()
    assert queue.set_index("track_id").loc["a", "predicted"] == "rock"
    limited = build_label_queue(FixedPredictor(PROBS), songs, [np.array([i]) for i in range(4)], limit=1)
    assert limited["track_id"].tolist() == ["b"]
    with pytest.raises(ParameterError, match="labeller"):
        build_label_queue(FixedPredictor(PROBS), songs, [np.array([i]) for i in range(4)], labeller=" ")
    with pytest.raises(ParameterError, match="one waveform per row"):
        build_label_queue(FixedPredictor(PROBS), songs, [np.array([0])])


def test_unlabelled_tracks_include_songs_missing_from_the_manifest():
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "path": ["1", "2", "3"], "artist": "x"})
    manifest = Manifest(
        frame=pd.DataFrame(
            {"track_id": ["a", "b"], "path": ["1", "2"], "artist": "x", "split": "train", "label": ["rock", None]}
        ),
        label_names=["rock", "jazz"],
    )
    assert unlabelled_tracks(tracks, manifest)["track_id"].tolist() == ["b", "c"]


def _result(name, labels, y_true, y_pred, track_ids=None):
    track_ids = track_ids or [f"t{i}" for i in range(len(y_true))]
    return {
        "name": name,
        "label_names": labels,
        "predictions": {"track_id": track_ids, "y_true": list(y_true), "y_pred": list(y_pred)},
    }


def test_same_classes_compare_on_songs_with_the_same_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = np.where(rng.random(200) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.random(200) < 0.4, y, (y + 1) % 3)
    a, b = _result("cnn", ["r", "j", "p"], y, good), _result("rf", ["r", "j", "p"], y, bad)
    b["predictions"]["y_true"][0] = (y[0] + 1) % 3  # relabelled in the other manifest: left out
    rows = {c["metric"]: c for c in compare_pair(a, b, n_boot=300)}
    assert rows["accuracy"]["n"] == 199 and rows["accuracy"]["excludes_zero"] and rows["accuracy"]["difference"] > 0.3
    assert rows["macro-f1"]["same_classes"]
    same = compare_pair(a, _result("cnn2", ["r", "j", "p"], y, good), n_boot=300)
    assert not any(c["excludes_zero"] for c in same)


def test_other_taxonomy_is_judged_against_its_own_labels():
    y = np.arange(60) % 3
    coarse = np.arange(60) % 2
    a = _result("genres", ["r", "j", "p"], y, y)  # all right
    b = _result("moods", ["calm", "tense"], coarse, 1 - coarse, track_ids=[f"t{i}" for i in range(60)])  # all wrong
    (row,) = compare_results([a, b], n_boot=200)
    assert row["metric"] == "accuracy (own labels)" and not row["same_classes"]
    assert row["value_a"] == 1.0 and row["value_b"] == 0.0 and row["excludes_zero"]
