"""Gradient boosting for the classical baseline, with the number of trees found on inner folds.

scikit-learn's histogram gradient boosting (``HistGradientBoostingClassifier`` /
``Regressor``, after LightGBM, Ke et al. 2017). Early stopping happens on inner folds of
the training songs: each inner fold's model grows until its held-out loss has not improved
for ``PATIENCE`` iterations (or ``max_iter``), its loss followed stage by stage; the iteration count with the lowest loss averaged
over the folds is then used to fit one model on all training songs, which does not stop
early itself (every training song is fitted). Several numeric targets get one model each
(:class:`PerTargetRegressor`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from threadpoolctl import threadpool_limits

from encore.train.selection import inner_folds, row_weight, target_weight

logger = logging.getLogger(__name__)

__all__ = ["PerTargetRegressor", "fit_boosting"]

PATIENCE = 30  # inner-fold iterations without a better held-out loss before that fold stops


class PerTargetRegressor:
    """One fitted regressor per target column; ``predict`` gives ``(n_songs, n_targets)``."""

    def __init__(self, estimators: list[Any]) -> None:
        self.estimators = estimators

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([estimator.predict(X) for estimator in self.estimators])


def _model(
    classification: bool,
    params: Mapping[str, Any],
    max_iter: int,
    seed: int,
    *,
    stop: bool = False,
):
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    extra: dict[str, Any] = {"class_weight": "balanced"} if classification else {}
    if stop:  # stop on the inner fold's held-out songs, passed to fit as X_val
        extra.update(
            n_iter_no_change=PATIENCE,
            validation_fraction=None,
            scoring="loss",
            tol=1e-7,
        )
    return cls(
        max_iter=max_iter,
        early_stopping=stop,
        random_state=seed,
        **dict(params),
        **extra,
    )


def _stage_losses(model, X: np.ndarray, y: np.ndarray, classification: bool, weight: np.ndarray | None) -> np.ndarray:
    """Held-out loss after each boosting iteration: log loss, or weighted squared error."""
    losses = []
    if classification:
        columns = np.searchsorted(model.classes_, y)
        known = np.isin(y, model.classes_)
        for probs in model.staged_predict_proba(X):
            picked = np.where(
                known,
                probs[np.arange(len(y)), np.minimum(columns, probs.shape[1] - 1)],
                1e-7,
            )
            losses.append(float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()))
    else:
        w = np.ones(len(y)) if weight is None else weight
        for predicted in model.staged_predict(X):
            losses.append(float(np.average((predicted - y) ** 2, weights=w)))
    return np.asarray(losses)


def _fit_one(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    params: Mapping[str, Any],
    max_iter: int,
    n_folds: int,
    seed: int,
    sample_weight: np.ndarray | None,
    groups: np.ndarray | None = None,
) -> tuple[Any, int, float]:
    """One target: ``(model on all songs, iterations chosen, best mean inner loss)``."""
    curves = []
    for fit_idx, val_idx in inner_folds(y, n_folds=n_folds, seed=seed, classification=classification, groups=groups):
        model = _model(classification, params, max_iter, seed, stop=True)
        weight = None if sample_weight is None else sample_weight[val_idx]
        model.fit(
            X[fit_idx],
            y[fit_idx],
            sample_weight=None if sample_weight is None else sample_weight[fit_idx],
            X_val=X[val_idx],
            y_val=y[val_idx],
            sample_weight_val=weight,
        )
        curve = _stage_losses(model, X[val_idx], y[val_idx], classification, weight)
        curves.append(np.pad(curve, (0, max_iter - len(curve)), mode="edge"))
    mean = np.mean(curves, axis=0)
    n_iter = int(np.argmin(mean)) + 1
    model = _model(classification, params, n_iter, seed)
    model.fit(X, y, sample_weight=sample_weight)
    return model, n_iter, float(mean[n_iter - 1])


def fit_boosting(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    params: Mapping[str, Any],
    max_iter: int,
    n_folds: int = 3,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    n_threads: int = 1,
    groups: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit gradient boosting on the training songs, its iteration count chosen on inner folds.

    Args:
        X: Training features, ``(n_songs, n_features)``.
        y: Class indices ``(n_songs,)``, or targets ``(n_songs,)`` / ``(n_songs, n_targets)``.
        classification: Whether ``y`` holds classes.
        params: Further ``HistGradientBoosting*`` arguments (``learning_rate``, ``max_leaf_nodes``,
            ``min_samples_leaf``, ``l2_regularization``).
        max_iter: Most boosting iterations tried on the inner folds.
        n_folds: Inner folds.
        seed: Seed of the folds and models.
        sample_weight: Optional weight per row; for several targets also ``(n_rows, n_targets)``,
            each target's model taking its own column.
        n_threads: OpenMP threads per fit. On a few hundred songs one thread is as fast
            as several, and several spin-waiting threads on a busy machine are up to 50x slower.
        groups: Each row's song when the rows are segments: the inner folds keep a song together.

    Returns:
        ``(model, info)``: the classifier, a regressor, or a :class:`PerTargetRegressor` for
        several targets; ``info`` has the iterations chosen (``n_iter``, one per target) and
        the mean inner-fold loss there (``inner_loss``).
    """
    fit_target = functools.partial(_fit_one, X, params=params, max_iter=max_iter, n_folds=n_folds, seed=seed, groups=groups)
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        if classification or y.ndim == 1:
            model, n_iter, loss = fit_target(y, classification=classification, sample_weight=row_weight(sample_weight))
            return model, {"n_iter": [n_iter], "inner_loss": [loss]}
        fitted = [
            fit_target(y[:, j], classification=False, sample_weight=target_weight(sample_weight, j)) for j in range(y.shape[1])
        ]
    logger.info("gradient boosting: %s iterations per target", [f[1] for f in fitted])
    return PerTargetRegressor([f[0] for f in fitted]), {
        "n_iter": [f[1] for f in fitted],
        "inner_loss": [f[2] for f in fitted],
    }
