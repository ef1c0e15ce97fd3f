"""The bootstrap behind every interval, and the metrics it computes on all resamples at once.

Song indices are drawn once as an ``(n_boot, n)`` array from a seeded
:class:`numpy.random.Generator`; confusion counts come through ``bincount``, rank
correlations and AUCs row-wise, so one call scores every resample. :mod:`encore.evaluate.metrics`
builds the headline metrics on these; :mod:`encore.evaluate.cv_summary` pools folds with them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from encore.exceptions import ParameterError

__all__ = ["bootstrap_ci"]

logger = logging.getLogger(__name__)


def _check_bootstrap_args(n_boot: int, confidence: float = 0.95) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot={n_boot!r} must be a positive integer, e.g. 1000")
    if not 0.0 < float(confidence) < 1.0:
        raise ParameterError(f"confidence={confidence!r} must lie strictly between 0 and 1, e.g. 0.95")


def _resample_indices(n: int, n_boot: int, seed: int | None) -> np.ndarray:
    """Song indices of every bootstrap resample, shape ``(n_boot, n)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(int(n_boot), n), dtype=np.int64)


def _interval(value: float, stats: np.ndarray, confidence: float, what: str) -> dict:
    """Percentile interval of the finite bootstrap statistics."""
    stats = np.asarray(stats, dtype=np.float64)
    finite = stats[np.isfinite(stats)]
    skipped = stats.size - finite.size
    if skipped:
        level = logging.WARNING if skipped > 0.1 * stats.size else logging.DEBUG
        logger.log(level, "%s: skipped %d of %d degenerate bootstrap resamples", what, skipped, stats.size)
    if finite.size == 0:
        low = high = float("nan")
    else:
        alpha = (1.0 - confidence) / 2.0
        low, high = (float(q) for q in np.quantile(finite, [alpha, 1.0 - alpha]))
    return {"value": float(value), "ci_low": low, "ci_high": high}


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: Sequence | np.ndarray,
    y_score: Sequence | np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> dict:
    """Percentile-bootstrap interval of any ``metric(y_true, y_score)`` over songs.

    Rows of ``y_true`` and ``y_score`` are resampled together. A resample on which the
    metric raises ``ValueError`` or returns a non-finite number is skipped.

    Args:
        metric: e.g. ``sklearn.metrics.roc_auc_score``.
        y_true: targets, first axis is songs.
        y_score: predictions or scores, first axis is songs (may be ``(n, n_classes)``).
        n_boot: number of resamples.
        seed: seed of the numpy Generator.
        confidence: coverage of the interval.

    Returns:
        ``{"value", "ci_low", "ci_high"}``; ``value`` is the metric on all songs (NaN when it
        is undefined there), the bounds are NaN when no resample was usable.

    Raises:
        ParameterError: lengths differ, no songs, or bad ``n_boot`` / ``confidence``.

    Example:
        >>> from sklearn.metrics import roc_auc_score
        >>> bootstrap_ci(roc_auc_score, [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_boot=200)["value"]
        0.75
    """
    _check_bootstrap_args(n_boot, confidence)
    yt, ys = np.asarray(y_true), np.asarray(y_score)
    if yt.ndim == 0 or ys.ndim == 0 or yt.shape[0] != ys.shape[0]:
        raise ParameterError(f"y_true has shape {yt.shape} but y_score has shape {ys.shape}; both need one row per song")
    if yt.shape[0] == 0:
        raise ParameterError("bootstrap_ci needs at least one song, got empty arrays")
    name = getattr(metric, "__name__", repr(metric))

    def safe(a: np.ndarray, b: np.ndarray) -> float:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = float(metric(a, b))
        except ValueError:
            return float("nan")
        return out if np.isfinite(out) else float("nan")

    value = safe(yt, ys)
    idx = _resample_indices(yt.shape[0], n_boot, seed)
    stats = np.array([safe(yt[row], ys[row]) for row in idx])
    return _interval(value, stats, confidence, name)


def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, idx: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts, rows true and columns predicted: ``(K, K)`` or ``(n_boot, K, K)``."""
    k2 = n_classes * n_classes
    codes = y_true * n_classes + y_pred
    if idx is None:
        return np.bincount(codes, minlength=k2).reshape(n_classes, n_classes)
    flat = codes[idx] + (np.arange(idx.shape[0], dtype=np.int64) * k2)[:, None]
    return np.bincount(flat.ravel(), minlength=idx.shape[0] * k2).reshape(idx.shape[0], n_classes, n_classes)


def _accuracy_from_counts(cm: np.ndarray) -> np.ndarray:
    total = cm.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diagonal(cm, axis1=-2, axis2=-1).sum(axis=-1) / total


def _balanced_accuracy_from_counts(cm: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present in ``y_true`` (as scikit-learn)."""
    support = cm.sum(axis=-1)
    present = support > 0
    recall = np.diagonal(cm, axis1=-2, axis2=-1) / np.where(present, support, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, recall, 0.0).sum(axis=-1) / present.sum(axis=-1)


def _macro_f1_from_counts(cm: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present in ``y_true`` or ``y_pred`` (as scikit-learn)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)
    present = denom > 0
    f1 = np.where(present, 2.0 * tp / np.where(present, denom, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f1.sum(axis=-1) / present.sum(axis=-1)


_COUNT_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy_from_counts,
    "balanced_accuracy": _balanced_accuracy_from_counts,
    "macro_f1": _macro_f1_from_counts,
}


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; NaN where either row is constant."""
    constant = (np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0) if x.shape[-1] else np.ones(x.shape[:-1], bool)
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    num = (xc * yc).sum(axis=-1)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(num / den, -1.0, 1.0)
    return np.where(constant | (x.shape[-1] < 2), np.nan, r)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation along the last axis (average ranks for ties)."""
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1], np.nan)
    return _pearson_rows(rankdata(x, axis=-1), rankdata(y, axis=-1))


def _mae_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.abs(x - y).mean(axis=-1)


_SCORE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "spearman": _spearman_rows,
    "pearson": _pearson_rows,
    "mae": _mae_rows,
}


def _check_scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be 1-D with one value per song, got shape {arr.shape}")
    return arr


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision along the last axis, as scikit-learn computes them.

    One descending sort serves both. ROC AUC is the Mann-Whitney U statistic with tied
    scores sharing their average rank; average precision is ``sum_k (R_k - R_{k-1}) P_k``
    over distinct score thresholds, so a tie group shares the precision at its end. Rows
    holding one class only give NaN for both.

    Args:
        labels: binary targets, shape ``(..., n)``.
        scores: scores, same shape.

    Returns:
        ``(roc_auc, average_precision)``, each of shape ``labels.shape[:-1]``.
    """
    n = labels.shape[-1]
    order = np.argsort(-scores, axis=-1, kind="stable")
    s = np.take_along_axis(scores, order, axis=-1)
    lab = np.take_along_axis(labels, order, axis=-1).astype(np.float64)
    position = np.arange(n)
    is_end = np.ones(s.shape, dtype=bool)
    is_end[..., :-1] = s[..., :-1] != s[..., 1:]
    is_start = np.ones(s.shape, dtype=bool)
    is_start[..., 1:] = is_end[..., :-1]
    group_end = np.minimum.accumulate(np.where(is_end, position, n)[..., ::-1], axis=-1)[..., ::-1]
    group_start = np.maximum.accumulate(np.where(is_start, position, 0), axis=-1)
    n_pos = lab.sum(axis=-1)
    n_neg = n - n_pos
    # Ascending rank of descending position i is n - i; a tie group shares the mean rank.
    mean_rank = n - (group_start + group_end) / 2.0
    u = (lab * mean_rank).sum(axis=-1) - n_pos * (n_pos + 1.0) / 2.0
    precision = np.cumsum(lab, axis=-1) / np.arange(1, n + 1)
    precision_at_end = np.take_along_axis(precision, group_end, axis=-1)
    valid = (n_pos > 0) & (n_neg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        roc = np.where(valid, u / (n_pos * n_neg), np.nan)
        ap = np.where(valid, (lab * precision_at_end).sum(axis=-1) / n_pos, np.nan)
    return roc, ap
