"""baseline.score_transform: the score head fitted on the normal scores of its targets' ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm, spearmanr
from sklearn.ensemble import RandomForestRegressor
from toy import make_toy, toy_config

from encore.config import load_config
from encore.inference.baseline import BaselinePredictor
from encore.train.baseline import fit_baseline, fit_head, training_songs
from encore.train.transform import NormalScores, normal_scores


class _Fixed:
    """A 'regressor' that predicts given values, to drive the back-mapping directly."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.values


def test_normal_scores_keep_the_ranking_tie_songs_together_and_map_back_exactly():
    y = np.array([0.3, -1.0, 0.3, 2.5, 0.0, 0.3, 7.0, -0.2])
    knots, z = normal_scores(y)
    assert spearmanr(z, y).statistic == pytest.approx(1.0)
    assert z[0] == z[2] == z[5] == pytest.approx(norm.ppf(4.5 / 8))  # the three tied songs at their mean rank, 5 of 8
    assert z[1] == pytest.approx(norm.ppf(0.5 / 8)) and z[6] == pytest.approx(norm.ppf(7.5 / 8))
    assert z[6] - z[3] == pytest.approx(norm.ppf(7.5 / 8) - norm.ppf(6.5 / 8))  # the outlier 7.0: one rank above 2.5
    np.testing.assert_allclose(NormalScores(_Fixed(z), knots).predict(None), y)


def test_the_back_mapping_is_strictly_increasing_inside_and_beyond_the_training_scores():
    y = np.round(np.random.default_rng(0).normal(size=60), 1)  # many ties, as vote counts give
    knots, _ = normal_scores(y)
    grid = np.linspace(-6, 6, 501)
    back = NormalScores(_Fixed(grid), knots).predict(None)
    assert (np.diff(back) > 0).all()  # no two predictions the model tells apart become equal
    assert back[0] < y.min() and back[-1] > y.max()


def test_segments_rank_their_songs_once_and_several_scores_each_their_own():
    songs = np.column_stack([[0.1, 0.5, -0.3, 0.9, 0.2], [3.0, 1.0, 2.0, 5.0, 4.0]])
    counts = np.array([1, 4, 2, 1, 3])  # a song with four segments counts once in the ranks
    groups = np.repeat(np.arange(5), counts)
    knots, z = normal_scores(songs[groups], groups)
    _, by_song = normal_scores(songs)
    np.testing.assert_allclose(z, by_song[groups])
    assert [spearmanr(by_song[:, j], songs[:, j]).statistic for j in range(2)] == pytest.approx([1.0, 1.0])
    np.testing.assert_allclose(NormalScores(_Fixed(z), knots).predict(None), songs[groups])


def test_a_forest_reads_a_skewed_scores_ranking_better_on_its_normal_scores():
    """A score that is a steep monotone function of the signal: most songs crowd at the bottom, a few far out."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 8))
    signal = X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.standard_normal(600)
    y = np.exp(2.5 * signal)
    train, test = np.arange(400), np.arange(400, 600)
    config = load_config(None, {"baseline.n_estimators": 200, "baseline.n_jobs": 1})
    names = [f"f{i}" for i in range(8)]
    plain, _ = fit_head(X[train], y[train], config.baseline, classification=False, names=names)
    ranked, entry = fit_head(X[train], y[train], config.baseline, classification=False, names=names, transform="normal_scores")
    assert isinstance(ranked, NormalScores) and isinstance(ranked.estimator, RandomForestRegressor)
    assert "normal scores" in entry["target_transform"]
    on_plain = spearmanr(plain.predict(X[test]), y[test]).statistic
    on_ranked = spearmanr(ranked.predict(X[test]), y[test]).statistic
    assert on_ranked > on_plain + 0.03, (on_ranked, on_plain)
    predicted = ranked.predict(X[test])
    assert predicted.min() >= y[train].min() and predicted.max() <= y[train].max()  # a forest stays inside its scores


def test_a_run_with_normal_scores_says_so_and_serves_scores_on_their_own_scale(tmp_path):
    manifest, waveforms = make_toy()
    config = toy_config(**{"baseline.n_estimators": 20, "baseline.n_jobs": 1, "baseline.score_transform": "normal_scores"})
    fit_baseline(manifest, waveforms, config, tmp_path / "rf")
    card = json.loads((tmp_path / "rf" / "model_card.json").read_text())
    assert "normal scores" in card["heads"]["regressor"]["target_transform"]
    assert "target_transform" not in card["heads"]["tagger"] and card["config"]["baseline"]["score_transform"] == "normal_scores"
    predictor = BaselinePredictor.from_run(tmp_path / "rf")
    assert isinstance(predictor.models["regressor"], NormalScores)
    trained = training_songs(manifest, waveforms).scores[:, 0]
    scores = predictor.predict_arrays(list(waveforms.values()))["scores"][:, 0]
    assert trained.min() <= scores.min() and scores.max() <= trained.max() and np.ptp(scores) > 0


def test_an_unknown_score_transform_is_refused_in_the_configs_words():
    with pytest.raises(Exception, match="score_transform"):
        load_config(None, {"baseline.score_transform": "log"})
