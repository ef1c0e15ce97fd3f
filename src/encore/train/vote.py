"""Soft voting: one classical head as the weighted mean of several fitted estimators.

The standard way to combine classifiers that err differently (Kittler et al., "On
combining classifiers", 1998; scikit-learn's ``VotingClassifier(voting="soft")`` and
``VotingRegressor``): the class probabilities, or the predicted targets, of every member
are averaged. scikit-learn's voters refit their members themselves; encore's members
each choose their own settings on inner folds first (the SVM's ``C`` and width, boosting's
iterations), so the vote is taken over members already fitted on the same songs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SoftVote"]


class SoftVote:
    """The weighted mean of fitted estimators' class probabilities or predictions.

    Args:
        estimators: Fitted models of one head, all classifiers (with ``predict_proba`` and
            the same ``classes_``) or all regressors.
        weights: One non-negative weight per estimator (default equal).

    Raises:
        ValueError: no estimator, a weight count that differs, weights that sum to zero,
            or classifiers that know different classes.
    """

    def __init__(self, estimators: Sequence[Any], weights: Sequence[float] | None = None) -> None:
        if not estimators:
            raise ValueError("a vote needs at least one estimator")
        w = np.ones(len(estimators)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(estimators),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights {list(w)} do not fit {len(estimators)} estimators (non-negative, not all zero)")
        self.estimators = list(estimators)
        self.weights = w / w.sum()
        self.classification = hasattr(self.estimators[0], "predict_proba")
        if self.classification:
            first = np.asarray(self.estimators[0].classes_)
            for other in self.estimators[1:]:
                if not np.array_equal(np.asarray(other.classes_), first):
                    raise ValueError(f"the estimators know different classes: {list(first)} and {list(other.classes_)}")

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.estimators[0].classes_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The weighted mean of the members' class probabilities, ``(n_songs, n_classes)``."""
        return sum(w * np.asarray(e.predict_proba(X), dtype=float) for w, e in zip(self.weights, self.estimators, strict=True))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class, or the weighted mean of the members' predictions (their shape)."""
        if self.classification:
            return self.classes_[self.predict_proba(X).argmax(1)]
        outputs = [np.asarray(e.predict(X), dtype=float) for e in self.estimators]
        mean = sum(w * o.reshape(len(o), -1) for w, o in zip(self.weights, outputs, strict=True))
        return mean.reshape(outputs[0].shape) if all(o.shape == outputs[0].shape for o in outputs) else mean
