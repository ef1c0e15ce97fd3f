"""Soft voting over classical estimators: the mean of the members, served from a run like any one of them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from encore.config import ConfigError, load_config
from encore.train.vote import SoftVote


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 6))
    classes = (X[:, 0] + 0.5 * rng.standard_normal(120) > 0).astype(int) + (X[:, 1] > 0.7).astype(int)
    targets = np.column_stack([X[:, 2] + 0.2 * rng.standard_normal(120), X[:, 3] - X[:, 4]])
    return X, classes, targets


def test_the_vote_is_the_weighted_mean_of_its_members():
    X, classes, targets = _data()
    forest = RandomForestClassifier(30, random_state=0).fit(X[:90], classes[:90])
    logistic = LogisticRegression(max_iter=500).fit(X[:90], classes[:90])
    vote = SoftVote([forest, logistic], [3, 1])
    expected = 0.75 * forest.predict_proba(X[90:]) + 0.25 * logistic.predict_proba(X[90:])
    np.testing.assert_allclose(vote.predict_proba(X[90:]), expected)
    np.testing.assert_array_equal(vote.predict(X[90:]), expected.argmax(1))
    np.testing.assert_array_equal(vote.classes_, [0, 1, 2])
    # the two members disagree somewhere, and the vote differs from at least one of them there
    assert (forest.predict(X[90:]) != logistic.predict(X[90:])).any()

    ridge = Ridge().fit(X[:90], targets[:90])
    trees = RandomForestRegressor(30, random_state=0).fit(X[:90], targets[:90])
    both = SoftVote([ridge, trees])
    np.testing.assert_allclose(both.predict(X[90:]), (ridge.predict(X[90:]) + trees.predict(X[90:])) / 2)
    one = SoftVote([Ridge().fit(X[:90], targets[:90, 0]), RandomForestRegressor(10, random_state=0).fit(X[:90], targets[:90, 0])])
    assert one.predict(X[90:]).shape == (30,)


def test_a_vote_refuses_members_that_do_not_agree_on_what_they_predict():
    X, classes, _ = _data()
    three = LogisticRegression(max_iter=500).fit(X, classes)
    two = LogisticRegression(max_iter=500).fit(X, classes.clip(0, 1))
    with pytest.raises(ValueError, match="different classes"):
        SoftVote([three, two])
    with pytest.raises(ValueError, match="weights"):
        SoftVote([three, three], [1.0])
    with pytest.raises(ValueError, match="weights"):
        SoftVote([three, three], [0.0, 0.0])


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("baseline.ensemble.members=[svm]", "at least two different estimators"),
        ("baseline.ensemble.members=[svm, svm]", "at least two different estimators"),
        ("baseline.ensemble.members=[svm, random_forest]", None),
        ("baseline.ensemble.weights=[1, 2, 3]", "one non-negative weight per member"),
        ("baseline.ensemble.members=[svm, knn]", "members"),
    ],
)
def test_ensemble_settings_are_checked_where_they_are_written(override, words):
    if words is None:
        assert load_config(None, ["baseline.estimator=ensemble", override]).baseline.ensemble.members == ["svm", "random_forest"]
        return
    with pytest.raises(ConfigError, match=words):
        load_config(None, ["baseline.estimator=ensemble", override])
