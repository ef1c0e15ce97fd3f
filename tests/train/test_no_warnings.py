"""An ordinary run on a user's own labelled catalogue (no listener feedback) raises no
library warning: the targets are built and a CNN trained with warnings as errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import joblib
import pytest

from encore.config import LabelsConfig
from encore.targets.build import build_manifest
from encore.store import Store
from encore.models.checkpoint import load_model
from encore.train.baseline import fit_baseline
from encore.train.loop import fit

from toy import CLASSES, tone_song, toy_config


@pytest.mark.filterwarnings("error")
def test_a_catalogue_without_feedback_builds_and_trains_without_warnings(tmp_path):
    rng = np.random.default_rng(0)
    track_ids = [f"{label}-{i}" for label in CLASSES for i in range(8)]
    waveforms = {t: tone_song(t.split("-")[0], rng, seconds=2.0) for t in track_ids}
    tracks = pd.DataFrame(
        {
            "track_id": track_ids,
            "path": [f"/nowhere/{t}.wav" for t in track_ids],
            "artist": [f"artist {t}" for t in track_ids],
            "title": track_ids,
            "duration": 2.0,
        }
    )
    with Store.open(tmp_path / "store.db") as store:
        store.add_tracks(tracks)
        store.add_catalogue_labels("genre", pd.DataFrame({"track_id": track_ids, "label": [t.split("-")[0] for t in track_ids]}))
        manifest = build_manifest(store, LabelsConfig(val_fraction=0.25, test_fraction=0.25))
    assert manifest.info["label_source"] == "catalogue:genre" and manifest.info["events"] == 0
    assert manifest.frame["appeal"].isna().all() and not manifest.tag_names  # no listener feedback at all
    assert manifest.regression_names == []  # so no score head to train on nothing, and no empty appeal metric
    result = fit(manifest, waveforms, toy_config(**{"train.epochs": 2}), tmp_path / "run")
    model, card = load_model(result.checkpoint)
    assert set(model.heads) == {"class"} and card.regression_names == []
    fit_baseline(manifest, waveforms, toy_config(**{"baseline.n_estimators": 10}), tmp_path / "rf")
    assert set(joblib.load(tmp_path / "rf" / "model.joblib")) == {"classifier"}


@pytest.mark.filterwarnings("error")
def test_score_standardisation_ignores_missing_scores_and_matches_numpy():
    from encore.train.loop import _standardise

    scores = np.array([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan], [np.nan, 4.0, np.nan]], dtype=np.float32)
    standardised, mean, std = _standardise(scores)
    assert mean[:2] == pytest.approx([2.0, 3.0]) and std[:2] == pytest.approx([1.0, 1.0])
    assert mean[2] == 0.0 and std[2] == 1.0  # a score no song has
    assert np.isnan(standardised[:, 2]).all() and standardised[0, 0] == pytest.approx(-1.0)
    assert mean.dtype == std.dtype == np.float32
    _, mean, std = _standardise(np.zeros((0, 2), dtype=np.float32))
    assert list(mean) == [0.0, 0.0] and list(std) == [1.0, 1.0]
