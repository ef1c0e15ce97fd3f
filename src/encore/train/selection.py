"""Feature selection by importance for the classical baseline, chosen inside the training songs.

Features are ranked by a random forest's impurity importance (Breiman 2001) and the
number kept is chosen by inner cross-validation: on each inner fold a forest fitted on
the other folds ranks the features, and forests on its top ``k`` are scored on the held-out
inner fold, for every candidate ``k``. The smallest ``k`` whose mean score is within one
standard error of the best is kept (the one-standard-error rule, Breiman et al. 1984),
then the features are ranked once more on all training songs and the top ``k`` kept.
Held-out (test) songs are never seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = [
    "KeptColumns",
    "Selection",
    "inner_folds",
    "row_weight",
    "target_weight",
    "rank_features",
    "score_predictions",
    "select_features",
]


@dataclass
class Selection:
    """The outcome of :func:`select_features`.

    Attributes:
        columns: Indices of the kept features, most important first.
        importance: Impurity importance of every feature, from a forest on all training songs.
        candidates: The numbers of features tried.
        scores: Mean inner-fold score per candidate (accuracy, or mean Spearman for regression).
        score_sd: Standard deviation of the inner-fold scores per candidate.
        metric: ``"accuracy"`` or ``"spearman"``.
    """

    columns: list[int]
    importance: np.ndarray
    candidates: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    score_sd: list[float] = field(default_factory=list)
    metric: str = "accuracy"


def row_weight(sample_weight: np.ndarray | None) -> np.ndarray | None:
    """``sample_weight`` as one weight a row: itself, or the mean over targets of a ``(n_rows, n_targets)`` one.

    A model that fits every target at once (a multi-output forest, the selection's ranking)
    takes one weight a row; the models fitted one target at a time take each target's own.
    """
    if sample_weight is None or sample_weight.ndim == 1:
        return sample_weight
    return sample_weight.mean(axis=1)


def target_weight(sample_weight: np.ndarray | None, j: int) -> np.ndarray | None:
    """The weights of target ``j`` for a model fitted on it alone: column ``j`` of a ``(n_rows, n_targets)`` one, else itself."""
    if sample_weight is None or sample_weight.ndim == 1:
        return sample_weight
    return sample_weight[:, j]


def inner_folds(
    y: np.ndarray, *, n_folds: int, seed: int, classification: bool, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, validation)`` index pairs over the training rows, stratified by class where possible.

    With ``groups`` (each row's song, when the rows are segments) no group straddles a
    split, so a song's segments never validate a model trained on its other segments.
    """
    if groups is not None:
        first = np.unique(groups, return_index=True)[1]  # a row of each song: a segment's class is its song's
        n_folds = min(n_folds, len(first))
        if classification and np.bincount(y[first]).min(initial=len(y)) >= n_folds:
            splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y, groups))
        return list(GroupKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), groups=groups))
    n_folds = min(n_folds, len(y))
    if classification and np.bincount(y).min(initial=len(y)) >= n_folds:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def score_predictions(y: np.ndarray, predicted: np.ndarray, *, classification: bool) -> float:
    """Accuracy, or the mean Spearman over the targets' columns (a constant column counts 0)."""
    if classification:
        return float((y == predicted).mean())
    y2, p2 = y.reshape(len(y), -1), predicted.reshape(len(predicted), -1)
    rhos = []
    for j in range(y2.shape[1]):
        rho = spearmanr(y2[:, j], p2[:, j]).statistic if np.ptp(p2[:, j]) > 0 and np.ptp(y2[:, j]) > 0 else 0.0
        rhos.append(0.0 if not np.isfinite(rho) else float(rho))
    return float(np.mean(rhos))


def _forest(classification: bool, *, n_estimators: int, seed: int, n_jobs: int) -> RandomForestClassifier | RandomForestRegressor:
    if classification:
        return RandomForestClassifier(
            n_estimators=n_estimators,
            class_weight="balanced",
            n_jobs=n_jobs,
            random_state=seed,
        )
    return RandomForestRegressor(n_estimators=n_estimators, max_features="sqrt", n_jobs=n_jobs, random_state=seed)


def rank_features(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    n_estimators: int,
    seed: int,
    n_jobs: int,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Impurity importance of every column of ``X`` (sums to 1) from one forest on ``(X, y)``."""
    forest = _forest(classification, n_estimators=n_estimators, seed=seed, n_jobs=n_jobs)
    forest.fit(X, y, sample_weight=sample_weight)
    return np.asarray(forest.feature_importances_, dtype=np.float64)


def select_features(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    fractions: Sequence[float],
    n_folds: int = 3,
    n_estimators: int = 200,
    seed: int = 0,
    n_jobs: int = -1,
    sample_weight: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Selection:
    """Choose how many of ``X``'s features to keep, and which, from the training songs alone.

    Args:
        X: Training features, ``(n_songs, n_features)``.
        y: Class indices ``(n_songs,)``, or targets ``(n_songs,)`` / ``(n_songs, n_targets)``.
        classification: Whether ``y`` holds classes (scored by accuracy) or numbers (mean Spearman).
        fractions: Candidate shares of the features to keep, each in ``(0, 1]``.
        n_folds: Inner cross-validation folds.
        n_estimators: Trees of each ranking and scoring forest.
        seed: Seed of the folds and forests.
        n_jobs: Forest worker threads (-1: all cores).
        sample_weight: Optional weight per song.
        groups: Each row's song when the rows are segments (see :func:`inner_folds`).

    Returns:
        The :class:`Selection`.

    Raises:
        ParameterError: A fraction is outside ``(0, 1]`` or there are too few songs for the folds.
    """
    n_features = X.shape[1]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ParameterError(f"baseline.selection.fractions={list(fractions)} must be shares in (0, 1]")
    if len(X) < 2 * n_folds:
        raise ParameterError(f"{len(X)} training songs are too few for {n_folds} inner folds of feature selection")
    candidates = sorted({max(1, round(f * n_features)) for f in fractions})
    folds = inner_folds(y, n_folds=n_folds, seed=seed, classification=classification, groups=groups)
    per_fold = np.zeros((len(folds), len(candidates)))
    for i, (fit_idx, val_idx) in enumerate(folds):
        weight = None if sample_weight is None else sample_weight[fit_idx]
        order = np.argsort(
            -rank_features(
                X[fit_idx],
                y[fit_idx],
                classification=classification,
                n_estimators=n_estimators,
                seed=seed,
                n_jobs=n_jobs,
                sample_weight=weight,
            )
        )
        for j, k in enumerate(candidates):
            forest = _forest(classification, n_estimators=n_estimators, seed=seed, n_jobs=n_jobs)
            forest.fit(X[fit_idx][:, order[:k]], y[fit_idx], sample_weight=weight)
            per_fold[i, j] = score_predictions(
                y[val_idx],
                forest.predict(X[val_idx][:, order[:k]]),
                classification=classification,
            )
    means, sds = (
        per_fold.mean(axis=0),
        per_fold.std(axis=0, ddof=1) if len(folds) > 1 else np.zeros(len(candidates)),
    )
    best = int(np.argmax(means))
    threshold = means[best] - sds[best] / np.sqrt(len(folds))
    chosen = next(j for j in range(len(candidates)) if means[j] >= threshold)
    importance = rank_features(
        X,
        y,
        classification=classification,
        n_estimators=n_estimators,
        seed=seed,
        n_jobs=n_jobs,
        sample_weight=sample_weight,
    )
    columns = [int(c) for c in np.argsort(-importance)[: candidates[chosen]]]
    logger.info(
        "feature selection: %d of %d features kept (inner %s %s)",
        len(columns),
        n_features,
        "accuracy" if classification else "spearman",
        np.round(means, 3).tolist(),
    )
    return Selection(
        columns=columns,
        importance=importance,
        candidates=candidates,
        scores=means.tolist(),
        score_sd=sds.tolist(),
        metric="accuracy" if classification else "spearman",
    )


class KeptColumns(BaseEstimator):
    """A fitted model that reads only some columns of the full feature vector.

    The selection travels inside the model, so whatever gives it the full handcrafted
    vector (the predictor, permutation importance) needs no other change.

    Args:
        estimator: The model fitted on ``X[:, columns]``.
        columns: Indices of the columns it reads, in its order.
    """

    def __init__(self, estimator: Any = None, columns: Sequence[int] = ()) -> None:
        self.estimator = estimator
        self.columns = columns

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> KeptColumns:
        self.estimator.fit(np.asarray(X)[:, list(self.columns)], y, sample_weight=sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict(np.asarray(X)[:, list(self.columns)])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(np.asarray(X)[:, list(self.columns)])

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_
