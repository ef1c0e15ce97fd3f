"""Evidence weighting: noisy per-song targets lean on the songs with many votes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from toy import make_toy, toy_config

from encore.data.manifest import TAG_PREFIX, Manifest
from encore.train.objectives import compute_losses, evidence_weights, select_split, target_weights


def _votes(rng, n_songs, spread):
    """True rates around 0.3 with the given spread; observed shares of 5-60 votes each."""
    true = np.clip(0.3 + spread * rng.standard_normal(n_songs), 0.02, 0.98)
    n = rng.integers(5, 61, n_songs)
    observed = rng.binomial(n, true) / n
    return true, observed, n


def test_a_noisy_target_leans_on_well_voted_songs_and_a_clean_one_weighs_all_alike():
    rng = np.random.default_rng(0)
    _, noisy, n = _votes(rng, 400, spread=0.03)  # votes disagree far more than songs differ
    _, clean, n2 = _votes(rng, 400, spread=0.25)
    for observed, votes, low, high in ((noisy, n, 4.0, None), (clean, n2, None, 2.0)):
        share = observed.mean()
        w = evidence_weights(observed[:, None], (share * (1 - share) / votes)[:, None])[:, 0]
        assert w.mean() == pytest.approx(1.0, rel=1e-5)
        assert np.all(np.diff(w[np.argsort(votes)]) >= -1e-6)  # more votes, never less weight
        ratio = w[votes == votes.max()].mean() / w[votes == votes.min()].mean()
        if low is not None:
            assert ratio > low
        if high is not None:
            assert ratio < high


def test_weighting_recovers_a_trend_better_than_treating_every_song_alike():
    """Weighted least squares on noisy shares: lower error in the slope over many draws."""
    rng = np.random.default_rng(1)
    errors = {"none": [], "evidence": []}
    for _ in range(300):
        x = rng.uniform(-1, 1, 200)
        true = 0.2 + 0.05 * x + 0.02 * rng.standard_normal(200)
        n = rng.integers(5, 61, 200)
        observed = rng.binomial(n, np.clip(true, 0.01, 0.99)) / n
        share = observed.mean()
        w = evidence_weights(observed[:, None], (share * (1 - share) / n)[:, None])[:, 0]
        design = np.column_stack([np.ones_like(x), x])
        for mode, weights in (("none", np.ones_like(w)), ("evidence", w)):
            sw = np.sqrt(weights)
            coef = np.linalg.lstsq(design * sw[:, None], observed * sw, rcond=None)[0]
            errors[mode].append((coef[1] - 0.05) ** 2)
    assert np.mean(errors["evidence"]) < 0.8 * np.mean(errors["none"])


def test_songs_without_a_target_get_no_weight_and_unknown_noise_the_mean():
    values = np.array([[0.1], [0.5], [np.nan], [0.3]])
    noise = np.array([[0.01], [np.nan], [0.02], [0.03]])
    w = evidence_weights(values, noise)[:, 0]
    assert w[2] == 0
    assert w[[0, 1, 3]].mean() == pytest.approx(1.0, rel=1e-5)
    assert w[0] > w[1] > w[3]  # noise 0.01 < mean noise 0.02 < 0.03


def _manifest(with_evidence: bool) -> Manifest:
    frame = pd.DataFrame(
        {
            "track_id": ["a", "b", "c", "d"],
            "path": "x",
            "artist": ["1", "2", "3", "4"],
            "split": "train",
            "label": ["x", "y", "x", "y"],
            "appeal": [0.1, 0.4, -0.2, 0.0],
            TAG_PREFIX + "sad": [0.0, 0.5, 0.25, 0.25],
        }
    )
    if with_evidence:
        frame["appeal_sd"] = [0.1, 0.2, 0.1, 0.3]
        frame["tag_support"] = [4, 8, 2, 16]
    return Manifest(frame=frame, label_names=["x", "y"], tag_names=["sad"], regression_names=["appeal"])


def test_the_manifest_says_how_noisy_each_target_is():
    manifest = _manifest(with_evidence=True)
    tag_noise, score_noise = manifest.target_noise(manifest.frame)
    share = 0.25  # the tag's mean share
    np.testing.assert_allclose(tag_noise[:, 0], share * (1 - share) / np.array([4, 8, 2, 16]))
    np.testing.assert_allclose(score_noise[:, 0], [0.01, 0.04, 0.01, 0.09])
    split = select_split(manifest, "train", {t: np.zeros(10, np.float32) for t in "abcd"})
    tag_w, score_w = target_weights(split, "evidence")
    assert tag_w[:, 0].argmax() == 3 and tag_w[:, 0].argmin() == 2  # most and fewest listeners
    assert score_w[:, 0].argmax() in (0, 2) and score_w[:, 0].argmin() == 3
    for w in target_weights(split, "none"):
        assert np.all(w == 1)


def test_without_evidence_columns_every_song_weighs_the_same():
    manifest = _manifest(with_evidence=False)
    split = select_split(manifest, "train", {t: np.zeros(10, np.float32) for t in "abcd"})
    for w in target_weights(split, "evidence"):
        assert np.all(w == 1)
    with pytest.raises(ValueError, match="'none' or 'evidence'"):
        target_weights(split, "votes")


def test_weighted_losses_are_the_weighted_means():
    torch.manual_seed(0)
    outputs = {"tags": torch.randn(5, 3), "regression": torch.randn(5, 1)}
    tags, scores = torch.rand(5, 3), torch.randn(5, 1)
    scores[2, 0] = float("nan")
    tag_w, score_w = torch.rand(5, 3) * 2, torch.rand(5, 1) * 2
    classes = torch.zeros(5, dtype=torch.long)
    plain = compute_losses(outputs, classes, classes, 1.0, tags, scores, None)
    weighted = compute_losses(outputs, classes, classes, 1.0, tags, scores, None, tag_w, score_w)
    ones = compute_losses(outputs, classes, classes, 1.0, tags, scores, None, torch.ones(5, 3), torch.ones(5, 1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(outputs["tags"], tags, reduction="none")
    torch.testing.assert_close(weighted["tags"], (bce * tag_w).mean())
    keep = [0, 1, 3, 4]
    expected = ((outputs["regression"][keep] - scores[keep]) ** 2 * score_w[keep]).mean()
    torch.testing.assert_close(weighted["regression"], expected)
    for key in plain:
        torch.testing.assert_close(ones[key], plain[key])


def _toy_with_evidence(seed: int, max_sd: float):
    """The toy catalogue with a second tag, a number of tag voters and an appeal standard error a song.

    The second tag's shares spread less across songs than the first's, so its sampling
    noise weighs more and its weights differ from the first tag's.
    """
    manifest, waveforms = make_toy()
    rng = np.random.default_rng(seed)
    frame = manifest.frame.assign(**{TAG_PREFIX + "busy": rng.uniform(0.3, 0.5, len(manifest.frame))})
    frame["tag_support"] = rng.integers(2, 30, len(frame))
    frame["appeal_sd"] = rng.uniform(0.01, max_sd, len(frame))
    tags = [*manifest.tag_names, "busy"]
    return Manifest(
        frame=frame, label_names=manifest.label_names, tag_names=tags, regression_names=manifest.regression_names
    ), waveforms


def _record_weights(monkeypatch, estimator) -> list:
    """Every ``sample_weight`` that ``estimator.fit`` is called with, in order."""
    seen: list = []
    original = estimator.fit

    def spy(self, X, y, sample_weight=None):
        seen.append(sample_weight)
        return original(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(estimator, "fit", spy)
    return seen


def test_cnn_and_forest_train_with_evidence_weights(tmp_path, monkeypatch):
    from sklearn.ensemble import RandomForestRegressor

    from encore.train.baseline import fit_baseline, training_songs
    from encore.train.loop import fit

    manifest, waveforms = _toy_with_evidence(0, max_sd=0.05)
    config = toy_config(
        **{
            "train.epochs": 1,
            "train.target_weighting": "evidence",
            "augment.mixup_alpha": 0.4,
            "baseline.target_weighting": "evidence",
            "baseline.n_estimators": 5,
        }
    )
    result = fit(manifest, waveforms, config, tmp_path / "cnn")
    assert np.isfinite(result.history[0]["train_loss"])

    seen = _record_weights(monkeypatch, RandomForestRegressor)
    fit_baseline(manifest, waveforms, config, tmp_path / "rf")
    train = training_songs(manifest, waveforms)  # the forest trains on every song outside the test split
    tag_w, score_w = target_weights(train, "evidence")
    assert len(seen) == 2
    np.testing.assert_allclose(seen[0], score_w.mean(axis=1))
    np.testing.assert_allclose(seen[1], tag_w.mean(axis=1))


def test_evidence_weights_reach_both_members_of_the_vote_each_target_its_own_on_every_segment(tmp_path, monkeypatch):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.svm import SVR

    from encore.features.extract import segment_waveforms
    from encore.train.baseline import fit_baseline, training_songs

    manifest, waveforms = _toy_with_evidence(1, max_sd=0.2)
    config = toy_config(
        **{
            "baseline.estimator": "ensemble",
            "baseline.target_weighting": "evidence",
            "baseline.segment_seconds": 1.0,
            "baseline.max_segments": 3,
            "baseline.n_estimators": 5,
            "baseline.n_jobs": 1,
            "baseline.svm.c_grid": [1.0],
            "baseline.svm.gamma_scales": [1.0],
        }
    )
    seen = {"forest": _record_weights(monkeypatch, RandomForestRegressor), "svr": _record_weights(monkeypatch, SVR)}
    fit_baseline(manifest, waveforms, config, tmp_path / "vote")
    songs = training_songs(manifest, waveforms)
    _, owner = segment_waveforms(songs.waveforms, sample_rate=8000, seconds=1.0, max_segments=3)
    assert len(owner) > len(songs.track_ids)
    tag_w, score_w = target_weights(songs, "evidence")
    assert score_w.std() > 0.1  # the songs' evidence differs, so a weight lost or misaligned shows
    assert np.abs(tag_w - tag_w.mean(axis=1, keepdims=True)).max() > 0.01  # and the tags' differ from their mean
    # the multi-output forest takes the mean of a segment's targets' weights
    forest = [w for w in seen["forest"] if w is not None]
    assert [len(w) for w in forest] == [len(owner)] * 2
    np.testing.assert_allclose(forest[0], score_w.mean(axis=1)[owner], rtol=1e-6)
    np.testing.assert_allclose(forest[1], tag_w.mean(axis=1)[owner], rtol=1e-6)
    # one SVR a target: the grid search fits unweighted, each final fit takes its own target's weights
    svr = [w for w in seen["svr"] if w is not None]
    expected = [w[owner] for w in (*score_w.T, *tag_w.T)]
    assert len(svr) == len(expected)
    for got, want in zip(svr, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
