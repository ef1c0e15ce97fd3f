"""The classical baseline: forest and boosting heads, selection by importance, the model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toy import make_toy, toy_config

from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.features.handcrafted import handcrafted_feature_names
from encore.inference.baseline import BaselinePredictor
from encore.models.card import ClassicalCard
from encore.train.baseline import fit_baseline, training_songs
from encore.train.boosting import PerTargetRegressor, fit_boosting
from encore.train.objectives import select_split
from encore.train.selection import KeptColumns, select_features


def _informative(n_songs: int = 240, n_noise: int = 37, seed: int = 0):
    """Three informative columns (0-2) among noise; a class and two numeric targets built from them."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_songs, 3 + n_noise))
    classes = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8).astype(int)
    targets = np.column_stack([X[:, 0] + 0.3 * rng.standard_normal(n_songs), X[:, 1] - X[:, 2]])
    return X, classes, targets


def test_selection_keeps_the_informative_features_and_at_most_half():
    X, classes, targets = _informative()
    for y, classification in ((classes, True), (targets, False)):
        selection = select_features(
            X, y, classification=classification, fractions=[0.1, 0.25, 0.5, 1.0], n_estimators=50, seed=0, n_jobs=1
        )
        assert len(selection.columns) <= X.shape[1] // 2
        assert selection.candidates == [4, 10, 20, 40]
        assert len(selection.scores) == 4 and selection.importance.shape == (40,)
        top = set(np.argsort(-selection.importance)[:3])
        assert top <= {0, 1, 2}, top
        assert {0, 1} <= set(selection.columns)


def test_selection_refuses_bad_fractions_and_too_few_songs():
    X, classes, _ = _informative(n_songs=30)
    with pytest.raises(ParameterError, match="fractions"):
        select_features(X, classes, classification=True, fractions=[0.5, 1.5], n_jobs=1)
    with pytest.raises(ParameterError, match="too few"):
        select_features(X[:4], classes[:4], classification=True, fractions=[0.5], n_folds=3, n_jobs=1)


def test_boosting_stops_early_on_noise_and_grows_on_signal():
    X, classes, targets = _informative()
    rng = np.random.default_rng(1)
    params = {"learning_rate": 0.2, "max_leaf_nodes": 7, "min_samples_leaf": 5, "l2_regularization": 0.0}
    _, info_noise = fit_boosting(X, rng.standard_normal(len(X)), classification=False, params=params, max_iter=60)
    signal, info_signal = fit_boosting(X, targets[:, 0], classification=False, params=params, max_iter=60)
    assert info_noise["n_iter"][0] < 10 <= info_signal["n_iter"][0]
    assert signal.n_iter_ == info_signal["n_iter"][0]  # the final model fits all songs with the chosen count
    several, info = fit_boosting(X, targets, classification=False, params=params, max_iter=30)
    assert isinstance(several, PerTargetRegressor) and several.predict(X).shape == (len(X), 2)
    assert len(info["n_iter"]) == 2
    clf, _ = fit_boosting(X, classes, classification=True, params=params, max_iter=30)
    assert (clf.predict(X) == classes).mean() > 0.8


def test_boosting_takes_each_targets_own_weights():
    """A weight a row and target: rows whose second target is corrupt, weighted 0 for it alone, do not spoil it."""
    X, _, targets = _informative(n_songs=300)
    rng = np.random.default_rng(2)
    corrupt = rng.random(len(X)) < 0.5
    noisy = targets.copy()
    noisy[corrupt, 1] = 10 * rng.standard_normal(corrupt.sum())
    weights = np.ones_like(targets)
    weights[corrupt, 1] = 0.0
    params = {"learning_rate": 0.2, "max_leaf_nodes": 7, "min_samples_leaf": 5, "l2_regularization": 0.0}
    X_test, _, clean = _informative(n_songs=200, seed=3)

    def fit_score(w):
        model, _ = fit_boosting(X, noisy, classification=False, params=params, max_iter=60, sample_weight=w)
        predicted = model.predict(X_test)
        return [np.corrcoef(predicted[:, j], clean[:, j])[0, 1] for j in range(2)]

    own = fit_score(weights)
    averaged = fit_score(weights.mean(axis=1))  # what one weight a row would give each target
    assert own[1] > 0.8 and own[1] > averaged[1] + 0.05, (own, averaged)
    assert own[0] > 0.8


def test_the_svm_chooses_its_regularisation_on_inner_folds_and_learns():
    from encore.train.svm import fit_svm

    X, classes, targets = _informative()
    X = X * np.array([1000.0] + [1.0] * (X.shape[1] - 1))  # a feature on another scale: standardised away
    clf, chosen = fit_svm(X, classes, classification=True, c_grid=[0.01, 1.0, 10.0], gamma_scales=[1.0], n_folds=3, seed=0)
    assert chosen["C"][0] in (1.0, 10.0), chosen  # C = 0.01 cannot separate the classes
    assert (clf.predict(X) == classes).mean() > 0.85 and clf.predict_proba(X).shape == (len(X), 3)
    several, chosen = fit_svm(X, targets, classification=False, c_grid=[0.1, 1.0], gamma_scales=[0.3, 1.0], n_folds=3, seed=0)
    predicted = several.predict(X)
    assert isinstance(several, PerTargetRegressor) and predicted.shape == (len(X), 2) and len(chosen["C"]) == 2
    for column in range(2):
        assert np.corrcoef(predicted[:, column], targets[:, column])[0, 1] > 0.7


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One feature cache for the module: the toy songs' features are computed once."""
    return FeatureCache(tmp_path_factory.mktemp("features"))


def _accuracy(predictor, manifest, waveforms) -> float:
    test = select_split(manifest, "test", waveforms)
    probs = predictor.predict_arrays(test.waveforms)["class_probs"]
    return float((probs.argmax(1) == test.classes).mean())


def test_the_forest_trains_on_every_song_outside_the_test_split_and_says_so(tmp_path, cache):
    manifest, waveforms = make_toy()
    config = toy_config(**{"baseline.n_estimators": 20, "baseline.n_jobs": 1})
    fit_baseline(manifest, waveforms, config, tmp_path / "rf", cache=cache)
    card = json.loads((tmp_path / "rf" / "model_card.json").read_text())
    outside_test = len(manifest.frame) - len(manifest.subset("test"))
    assert card["trained_on"]["n_songs"] == outside_test == len(training_songs(manifest, waveforms).track_ids)
    assert card["trained_on"]["splits"] == ["train", "val"] and "test split" in card["trained_on"]["note"]
    assert card["model_type"] == "random_forest"
    names = handcrafted_feature_names()
    assert card["feature_names"] == names and sorted(n for group in card["feature_families"].values() for n in group) == sorted(
        names
    )
    assert len(card["feature_importance"]["classifier"]) == len(names)
    assert card["heads"]["classifier"]["columns"] == list(range(len(names)))
    assert _accuracy(BaselinePredictor.from_run(tmp_path / "rf"), manifest, waveforms) > 0.9


@pytest.mark.parametrize("estimator", ["random_forest", "gradient_boosting", "svm", "ensemble"])
def test_selection_and_boosting_are_served_like_the_forest(tmp_path, cache, estimator):
    manifest, waveforms = make_toy()
    config = toy_config(
        **{
            "baseline.estimator": estimator,
            "baseline.n_estimators": 20,
            "baseline.n_jobs": 1,
            "baseline.selection.enabled": True,
            "baseline.selection.n_estimators": 20,
            "baseline.boosting.max_iter": 20,
            "baseline.boosting.min_samples_leaf": 3,
            "baseline.boosting.learning_rate": 0.3,
        }
    )
    fit_baseline(manifest, waveforms, config, tmp_path / "run", cache=cache)
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["model_type"] == estimator
    for head in ("classifier", "regressor", "tagger"):
        selection = card["heads"][head]["selection"]
        assert selection["n_kept"] == len(selection["kept"]) == len(card["heads"][head]["columns"])
        assert selection["n_kept"] in selection["candidates"] and set(selection["kept"]) <= set(card["feature_names"])
        assert selection["importance"] == sorted(selection["importance"], reverse=True)
        if estimator == "gradient_boosting":
            assert 1 <= min(card["heads"][head]["boosting"]["n_iter"]) <= 20
        if estimator in ("svm", "ensemble"):
            assert set(card["heads"][head]["svm"]["C"]) <= set(config.baseline.svm.c_grid)
        if estimator == "ensemble":
            assert card["heads"][head]["ensemble"] == {
                "members": ["random_forest", "svm"],
                "weights": [0.5, 0.5],
                "voting": "soft",
            }
    predictor = BaselinePredictor.from_run(tmp_path / "run")
    assert isinstance(predictor.models["classifier"], KeptColumns)
    test = select_split(manifest, "test", waveforms)
    arrays = predictor.predict_arrays(test.waveforms)
    assert arrays["class_probs"].shape == (len(test.track_ids), 3) and arrays["scores"].shape == (len(test.track_ids), 1)
    assert arrays["tag_probs"].shape == (len(test.track_ids), 1)
    np.testing.assert_allclose(arrays["class_probs"].sum(1), 1.0, rtol=1e-5)
    # well above chance (1/3) on 12 test songs; 47 training songs are few for ranking 145 features
    assert _accuracy(predictor, manifest, waveforms) >= 0.75
    # a run is the same model after loading: each song alone equals the batch
    alone = predictor.predict_waveform(test.waveforms[0])
    np.testing.assert_allclose(alone["class_probs"], arrays["class_probs"][0], rtol=1e-6)


def test_a_card_of_the_first_feature_version_reads_its_92_features(tmp_path):
    """Runs trained before the new families still load: version 2 keeps version 1's entries first."""
    from sklearn.ensemble import RandomForestClassifier

    manifest, waveforms = make_toy()
    train = select_split(manifest, "train", waveforms)
    card = ClassicalCard.from_dict(  # as a version-1 card of the first feature version was written
        {
            "model_type": "random_forest",
            "feature_names": handcrafted_feature_names()[:92],
            "sample_rate": 8000,
            "feature_settings": {"kind": "handcrafted", "version": 1, "sample_rate": 8000, "n_fft": 2048, "hop_length": 512},
            "label_names": ["low", "mid", "high"],
            "classes_": [0, 1, 2],
        }
    )
    predictor = BaselinePredictor({}, card)
    features, owner = predictor.features(train.waveforms)
    assert features.shape == (len(train.track_ids), 92) and list(owner) == list(range(len(train.track_ids)))
    known = train.classes >= 0
    predictor.models["classifier"] = RandomForestClassifier(10, random_state=0).fit(features[known], train.classes[known])
    assert predictor.predict_arrays(train.waveforms[:2])["class_probs"].shape == (2, 3)


def test_inner_folds_keep_each_songs_segments_together():
    from encore.train.selection import inner_folds

    rng = np.random.default_rng(0)
    song_class = np.repeat([0, 1, 2], 10)
    groups = np.repeat(np.arange(30), rng.integers(2, 6, 30))  # 2-5 segments a song
    y = song_class[groups]
    for classification, target in ((True, y), (False, rng.standard_normal(len(y)))):
        folds = inner_folds(target, n_folds=3, seed=0, classification=classification, groups=groups)
        assert len(folds) == 3
        held = np.concatenate([val for _, val in folds])
        assert sorted(held) == list(range(len(y)))  # every row validated once
        for fit_idx, val_idx in folds:
            assert not set(groups[fit_idx]) & set(groups[val_idx])
            if classification:
                assert set(y[val_idx]) == {0, 1, 2}  # stratified by the songs' classes


def test_the_svm_chooses_and_calibrates_on_folds_that_keep_songs_whole(monkeypatch):
    import encore.train.svm as svm_module

    X, classes, targets = _informative(n_songs=45)
    groups = np.repeat(np.arange(45), 2)  # two segments a song, nearly alike
    rows = X[groups] + 0.01 * np.random.default_rng(1).standard_normal((len(groups), X.shape[1]))
    real, seen = svm_module.inner_folds, []

    def spy(*args, **kwargs):
        folds = real(*args, **kwargs)
        seen.append((kwargs["groups"], folds))
        return folds

    monkeypatch.setattr(svm_module, "inner_folds", spy)
    grid = {"c_grid": [1.0], "gamma_scales": [1.0], "n_folds": 3, "seed": 0, "groups": groups}
    model, _ = svm_module.fit_svm(rows, classes[groups], classification=True, **grid)
    svm_module.fit_svm(rows, targets[groups, 0], classification=False, **grid)
    assert len(seen) == 2 and model.predict_proba(rows).shape == (len(rows), 3)
    for g, folds in seen:  # the grid search's, Platt scaling's and the regressors' folds
        for fit_idx, val_idx in folds:
            assert not set(g[fit_idx]) & set(g[val_idx])


@pytest.mark.parametrize("estimator", ["random_forest", "ensemble"])
def test_segments_train_on_every_segment_and_serve_a_song_as_their_mean(tmp_path, cache, estimator):
    from encore.features.extract import compute_feature_matrix, segment_waveforms

    manifest, waveforms = make_toy()
    settings = {"baseline.estimator": estimator, "baseline.n_estimators": 20, "baseline.n_jobs": 1}
    config = toy_config(**settings, **{"baseline.segment_seconds": 1.0, "baseline.max_segments": 3})
    fit_baseline(manifest, waveforms, config, tmp_path / "run", cache=cache)
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    songs = training_songs(manifest, waveforms)
    pieces, owner = segment_waveforms(songs.waveforms, sample_rate=8000, seconds=1.0, max_segments=3)
    assert card["segments"] == {"seconds": 1.0, "max_segments": 3}
    assert card["trained_on"]["n_songs"] == len(songs.track_ids) and card["trained_on"]["n_segments"] == len(pieces)
    assert len(pieces) > len(songs.track_ids) and np.bincount(owner).max() == 3
    predictor = BaselinePredictor.from_run(tmp_path / "run")
    assert _accuracy(predictor, manifest, waveforms) > 0.9
    test = select_split(manifest, "test", waveforms)
    song = test.waveforms[0]
    segments, _ = segment_waveforms([song], sample_rate=8000, seconds=1.0, max_segments=3)
    rows = compute_feature_matrix(segments, sample_rate=8000, n_fft=2048, hop_length=512)
    served = predictor.predict_waveform(song)
    np.testing.assert_allclose(served["class_probs"], predictor.models["classifier"].predict_proba(rows).mean(0), rtol=1e-5)
    np.testing.assert_allclose(
        served["scores"], predictor.models["regressor"].predict(rows).reshape(len(rows), -1).mean(0), rtol=1e-5
    )
    assert predictor.predict_arrays(test.waveforms)["class_probs"].shape == (len(test.track_ids), 3)


def test_the_svm_grid_in_parallel_chooses_and_predicts_as_in_series():
    from encore.train.svm import fit_svm

    X, classes, targets = _informative(n_songs=90)
    grid = {"c_grid": [0.3, 3.0, 30.0], "gamma_scales": [0.3, 3.0], "n_folds": 3, "seed": 0}
    for y, classification in ((classes, True), (targets, False)):
        series, chosen = fit_svm(X, y, classification=classification, n_jobs=1, **grid)
        parallel, chosen_too = fit_svm(X, y, classification=classification, n_jobs=2, **grid)
        assert chosen == chosen_too
        predict = "predict_proba" if classification else "predict"
        np.testing.assert_array_equal(getattr(series, predict)(X), getattr(parallel, predict)(X))
