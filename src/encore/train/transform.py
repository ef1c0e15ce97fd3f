"""The score head's targets as the normal scores of their ranks (``baseline.score_transform: normal_scores``).

A listener-appeal score is read by its ranking (Spearman), and a squared-error learner
fitted on it as it is weighs a song by how far its score lies from the mean. Fitted on
the normal scores of the training songs' ranks instead, Φ⁻¹((r − ½) / n) with tied songs
at their mean rank (the rank-based inverse normal transform), the learner's loss follows
the ranking, and the most and least liked songs stand further out. The transform's knots
travel with the model: a prediction is mapped back to the score's own scale by
interpolating between the training songs' distinct scores, strictly increasing, so the
back-mapping keeps every distinction the model makes (a quantile function over tied
scores would merge predictions that fall between equal quantiles).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ["NormalScores", "normal_scores"]


def normal_scores(y: np.ndarray, groups: np.ndarray | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The normal scores of every row's targets among the songs' targets, and the knots that map them back.

    Args:
        y: Targets, ``(n_rows,)`` or ``(n_rows, n_targets)``, no NaN.
        groups: Each row's song when the rows are segments (a song's segments share its
            targets); the ranks are then the songs' ranks, not the segments'.

    Returns:
        ``(knots, transformed)``: per target, the normal scores of its distinct values and
        the values, both increasing; the transformed targets shaped as ``y``.
    """
    y = np.asarray(y, dtype=float)
    rows = y.reshape(len(y), -1)
    songs = rows if groups is None else rows[np.unique(np.asarray(groups), return_index=True)[1]]
    knots, out = [], np.empty_like(rows)
    for j in range(rows.shape[1]):
        values, first = np.unique(songs[:, j], return_index=True)
        z = norm.ppf((rankdata(songs[:, j]) - 0.5) / len(songs))[first]  # tied songs share their mean rank's score
        knots.append((z, values))
        out[:, j] = z[np.searchsorted(values, rows[:, j])]
    return knots, out.reshape(y.shape)


def _back(z: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Piecewise-linear through the knots, continued along the end segments' slopes."""
    if len(values) == 1:
        return np.full_like(z, values[0])
    out = np.interp(z, knots, values)
    low, high = z < knots[0], z > knots[-1]
    out[low] = values[0] + (z[low] - knots[0]) * (values[1] - values[0]) / (knots[1] - knots[0])
    out[high] = values[-1] + (z[high] - knots[-1]) * (values[-1] - values[-2]) / (knots[-1] - knots[-2])
    return out


class NormalScores:
    """A regressor fitted on normal scores (:func:`normal_scores`), predicting on the targets' own scale.

    Args:
        estimator: The fitted regressor (it predicts normal scores).
        knots: :func:`normal_scores`'s knots, one pair a target.
    """

    def __init__(self, estimator: Any, knots: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.estimator = estimator
        self.knots = knots

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The estimator's predictions mapped back to the targets' scale, shaped as the estimator gives them."""
        z = np.asarray(self.estimator.predict(X), dtype=float)
        cols = z.reshape(len(z), -1)
        back = np.column_stack([_back(cols[:, j], *self.knots[j]) for j in range(cols.shape[1])])
        return back.reshape(z.shape)
