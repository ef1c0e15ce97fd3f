"""Support-vector machines for the classical baseline, their regularisation chosen on inner folds.

The classic MIR recipe for a summary of handcrafted features (Tzanetakis & Cook 2002;
Mandel & Ellis 2005; the MIREX genre and mood baselines): every feature standardised on
the training songs, then an RBF-kernel SVM (``SVC``, probabilities by Platt scaling on out-of-fold decision values,
classes balanced) for the class and an ``SVR`` per numeric target, on standardised
targets so one grid of ``C`` fits every target's scale. ``C`` and the kernel width are
chosen by inner cross-validation on the training songs only (accuracy for the class,
R² for a target), then one model is fitted on all of them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from encore.train.boosting import PerTargetRegressor
from encore.train.selection import inner_folds, row_weight, target_weight

logger = logging.getLogger(__name__)

__all__ = ["fit_svm"]


def _features() -> list[Any]:
    """The shared front: missing values (a silent song's spread) to the median, then unit variance."""
    return [SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()]


def fit_svm(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    c_grid: list[float],
    gamma_scales: list[float],
    n_folds: int,
    seed: int,
    sample_weight: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit an RBF SVM (or one SVR per target column) with ``C`` and ``gamma`` chosen on inner folds.

    Args:
        X: Training features ``(n_songs, n_features)``.
        y: Class indices ``(n_songs,)`` or targets ``(n_songs,)`` / ``(n_songs, n_targets)``.
        classification: Whether ``y`` holds classes.
        c_grid: Candidate ``C`` values.
        gamma_scales: Candidate kernel widths as multiples of ``1 / n_features`` (the
            features are standardised, so that is scikit-learn's ``"scale"``).
        n_folds: Inner cross-validation folds (fewer when a class has fewer songs).
        seed: Seed of the inner folds and of Platt scaling.
        sample_weight: Optional weight per row (used in the final fit); for several targets
            also ``(n_rows, n_targets)``, each SVR taking its own target's column.
        groups: Each row's song when the rows are segments: the inner folds (and Platt
            scaling's) keep a song's segments together.
        n_jobs: Grid points fitted in parallel (-1: all cores; None: one). The choice is the
            same whatever the number.

    Returns:
        ``(model, chosen)``: a fitted estimator with ``predict`` (and ``predict_proba`` for
        a class) on the full feature vector, and the chosen ``C`` and ``gamma`` per target.
    """
    base_gamma = 1.0 / max(X.shape[1], 1)
    grid = {"svm__C": list(c_grid), "svm__gamma": [base_gamma * s for s in gamma_scales]}
    if classification:
        songs = slice(None) if groups is None else np.unique(groups, return_index=True)[1]  # a segment's class is its song's
        counts = np.bincount(np.asarray(y, dtype=int)[songs])
        folds = max(2, min(n_folds, int(counts[counts > 0].min())))
        splits: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
        if groups is not None:
            splits = inner_folds(np.asarray(y, dtype=int), n_folds=folds, seed=seed, classification=True, groups=groups)
        estimator = Pipeline(
            [*((type(t).__name__.lower(), t) for t in _features()), ("svm", SVC(class_weight="balanced", random_state=seed))]
        )
        # refit=False: the chosen settings are fitted below, Platt-scaled; the search's own refit would be thrown away
        search = GridSearchCV(estimator, grid, cv=splits, scoring="accuracy", n_jobs=n_jobs, refit=False)
        search.fit(X, y)
        best = search.best_params_
        svm = SVC(C=best["svm__C"], gamma=best["svm__gamma"], class_weight="balanced", random_state=seed)
        # Platt scaling on out-of-fold decision values; the SVM itself is then fitted on every song
        calibrated = CalibratedClassifierCV(svm, method="sigmoid", cv=splits, ensemble=False)
        model = make_pipeline(*_features(), calibrated)
        model.fit(X, y, calibratedclassifiercv__sample_weight=row_weight(sample_weight))
        return model, {"C": [float(best["svm__C"])], "gamma": [float(best["svm__gamma"])]}
    targets = np.asarray(y, dtype=float)
    columns = targets.reshape(len(targets), -1)
    models, chosen_c, chosen_gamma = [], [], []
    for j, column in enumerate(columns.T):
        estimator = Pipeline([*((type(t).__name__.lower(), t) for t in _features()), ("svm", SVR())])
        search = GridSearchCV(
            TransformedTargetRegressor(estimator, transformer=StandardScaler()),
            {f"regressor__{k}": v for k, v in grid.items()},
            cv=KFold(max(2, n_folds), shuffle=True, random_state=seed)
            if groups is None
            else inner_folds(column, n_folds=max(2, n_folds), seed=seed, classification=False, groups=groups),
            scoring="r2",
            n_jobs=n_jobs,
            refit=False,
        )
        search.fit(X, column)
        best = search.best_params_
        model = TransformedTargetRegressor(
            make_pipeline(*_features(), SVR(C=best["regressor__svm__C"], gamma=best["regressor__svm__gamma"])),
            transformer=StandardScaler(),
        )
        weight = target_weight(sample_weight, j)
        model.fit(X, column, **({} if weight is None else {"svr__sample_weight": weight}))
        models.append(model)
        chosen_c.append(float(best["regressor__svm__C"]))
        chosen_gamma.append(float(best["regressor__svm__gamma"]))
    if targets.ndim == 1:
        return models[0], {"C": chosen_c, "gamma": chosen_gamma}
    return PerTargetRegressor(models), {"C": chosen_c, "gamma": chosen_gamma}
