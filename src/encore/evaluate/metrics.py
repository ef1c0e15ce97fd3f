"""Headline metrics with percentile-bootstrap 95 % intervals over songs.

Every interval resamples songs with replacement: the indices are drawn once as an
``(n_boot, n)`` array from a seeded :class:`numpy.random.Generator`, and the built-in
metrics are computed for all resamples at once (confusion counts through ``bincount``,
rank correlations and AUCs row-wise). Resamples on which a metric is undefined (one class
only for an AUC, a constant vector for a correlation) are skipped. Each figure is
reported as ``{"value", "ci_low", "ci_high"}``, the value being the metric on all songs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from encore.evaluate.calibration import check_class_indices, check_probs, expected_calibration_error, reliability_bins
from encore.exceptions import ParameterError

__all__ = [
    "PAIRED_METRICS",
    "bootstrap_ci",
    "classification_metrics",
    "compare_paired",
    "multilabel_metrics",
    "regression_metrics",
]

logger = logging.getLogger(__name__)

#: Metrics :func:`compare_paired` accepts; the first three take class indices, the rest scores.
PAIRED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "spearman", "pearson", "mae")


# --------------------------------------------------------------------------- bootstrap core


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


# --------------------------------------------------------------------------- classification


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


def _per_class(cm: np.ndarray, label_names: Sequence[str]) -> list[dict]:
    tp = np.diagonal(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    rows = []
    for k, name in enumerate(label_names):
        precision = tp[k] / predicted[k] if predicted[k] else 0.0
        recall = tp[k] / support[k] if support[k] else 0.0
        f1 = 2.0 * tp[k] / (support[k] + predicted[k]) if support[k] + predicted[k] else 0.0
        rows.append(
            {
                "label": str(name),
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(support[k]),
            }
        )
    return rows


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    label_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> dict:
    """Accuracy, balanced accuracy and macro-F1 with intervals, per-class scores, calibration.

    The prediction is the arg-max class. Per-class precision, recall and F1 are 0 where
    undefined; macro-F1 averages over the classes present in the labels or the predictions
    (scikit-learn's default), balanced accuracy over the classes present in the labels.

    Args:
        y_true: class index per song, shape ``(n,)``.
        probs: class probabilities, shape ``(n, n_classes)``.
        label_names: one name per column of ``probs``.
        n_boot: number of bootstrap resamples.
        seed: seed of the numpy Generator.

    Returns:
        ``{"n", "accuracy", "balanced_accuracy", "macro_f1", "per_class", "confusion_matrix",
        "label_names", "ece", "reliability"}``; the three headline figures are
        ``{"value", "ci_low", "ci_high"}``, ``confusion_matrix`` has rows true and columns
        predicted, ``ece`` and ``reliability`` use 10 equal-width bins.

    Raises:
        ParameterError: shapes disagree, no songs, or labels out of range.
    """
    _check_bootstrap_args(n_boot)
    y, p = check_probs(y_true, probs)
    names = [str(n) for n in label_names]
    if len(names) != p.shape[1]:
        raise ParameterError(
            f"label_names has {len(names)} names but probs has shape {p.shape}; give one name per probability column"
        )
    if y.size == 0:
        raise ParameterError("classification_metrics needs at least one song, got probs of shape (0, ...)")
    n_classes = p.shape[1]
    pred = p.argmax(axis=1)
    cm = _confusion_counts(y, pred, n_classes)
    boot_cm = _confusion_counts(y, pred, n_classes, _resample_indices(y.size, n_boot, seed))
    out: dict = {"n": int(y.size)}
    for name, fn in _COUNT_METRICS.items():
        out[name] = _interval(float(fn(cm)), fn(boot_cm), 0.95, name)
    bins = reliability_bins(y, p, n_bins=10)
    out.update(
        per_class=_per_class(cm, names),
        confusion_matrix=cm.astype(int).tolist(),
        label_names=names,
        ece=expected_calibration_error(y, p, n_bins=10),
        reliability={k: bins[k] for k in ("bin_confidence", "bin_accuracy", "bin_count", "bin_edges")},
    )
    return out


# --------------------------------------------------------------------------- regression


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


def regression_metrics(
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> dict:
    """Spearman, Pearson and MAE of a per-song score (e.g. appeal), with intervals.

    Songs whose target is NaN (no feedback) are dropped and counted.

    Args:
        y_true: observed target per song, shape ``(n,)``; NaN marks a missing target.
        y_pred: predicted value per song, shape ``(n,)``.
        n_boot: number of bootstrap resamples.
        seed: seed of the numpy Generator.

    Returns:
        ``{"n", "n_missing", "spearman", "pearson", "mae"}``, each figure
        ``{"value", "ci_low", "ci_high"}``; correlations are NaN for fewer than two songs
        or a constant vector.

    Raises:
        ParameterError: shapes disagree, a prediction is NaN, or no target is present.
    """
    _check_bootstrap_args(n_boot)
    yt, yp = _check_scores(y_true, "y_true"), _check_scores(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ParameterError(f"y_true has shape {yt.shape} but y_pred has shape {yp.shape}; both need one value per song")
    missing = np.isnan(yt)
    yt, yp = yt[~missing], yp[~missing]
    if yt.size == 0:
        raise ParameterError(f"all {int(missing.sum())} targets are NaN; regression_metrics needs at least one observed target")
    if not np.all(np.isfinite(yp)) or not np.all(np.isfinite(yt)):
        raise ParameterError(
            f"y_pred holds {int(np.sum(~np.isfinite(yp)))} and y_true {int(np.sum(np.isinf(yt)))} non-finite values "
            "on songs with a target; fix the model output first"
        )
    idx = _resample_indices(yt.size, n_boot, seed)
    out: dict = {"n": int(yt.size), "n_missing": int(missing.sum())}
    for name, fn in _SCORE_METRICS.items():
        out[name] = _interval(float(fn(yt, yp)), fn(yt[idx], yp[idx]), 0.95, name)
    return out


# --------------------------------------------------------------------------- multi-label


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


def multilabel_metrics(
    targets: np.ndarray,
    probs: np.ndarray,
    tag_names: Sequence[str],
    *,
    threshold: float = 0.5,
    n_boot: int = 200,
    seed: int | None = 0,
) -> dict:
    """Macro ROC-AUC and PR-AUC (average precision) over tags, with intervals.

    Args:
        targets: per-song tag targets, shape ``(n, n_tags)``; soft targets are binarised
            as ``targets >= threshold``.
        probs: predicted tag probabilities, shape ``(n, n_tags)``.
        tag_names: one name per column.
        threshold: binarisation threshold for the targets.
        n_boot: number of bootstrap resamples.
        seed: seed of the numpy Generator.

    Returns:
        ``{"n", "macro_roc_auc", "macro_pr_auc", "per_tag"}``; ``per_tag`` rows are
        ``{"tag", "roc_auc", "pr_auc", "support"}`` (support: positive songs). A tag whose
        binarised targets hold one class only gets ``None`` AUCs and is left out of the
        macro averages; in a resample, a tag with one class is left out of that resample.

    Raises:
        ParameterError: shapes disagree, NaNs, or a bad threshold.
    """
    _check_bootstrap_args(n_boot)
    t = np.asarray(targets, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    names = [str(n) for n in tag_names]
    if t.ndim != 2 or t.shape != p.shape:
        raise ParameterError(f"targets has shape {t.shape} but probs has shape {p.shape}; both must be (n, n_tags)")
    if len(names) != p.shape[1]:
        raise ParameterError(f"tag_names has {len(names)} names but probs has shape {p.shape}; give one name per column")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ParameterError("targets and probs must not hold NaN or infinite values; drop songs without tag targets first")
    if not 0.0 < float(threshold) <= 1.0:
        raise ParameterError(f"threshold={threshold!r} must lie in (0, 1], e.g. 0.5")
    labels = t >= threshold
    roc, pr = _auc_rows(labels.T, p.T)
    valid = np.flatnonzero(np.isfinite(roc))
    per_tag = [
        {
            "tag": name,
            "roc_auc": float(roc[j]) if np.isfinite(roc[j]) else None,
            "pr_auc": float(pr[j]) if np.isfinite(pr[j]) else None,
            "support": int(labels[:, j].sum()),
        }
        for j, name in enumerate(names)
    ]
    if len(valid) < len(names):
        logger.info("%d of %d tags have one class only and are left out of the macro AUCs", len(names) - len(valid), len(names))
    out: dict = {"n": int(p.shape[0])}
    if valid.size == 0 or p.shape[0] == 0:
        logger.warning("no tag has both positive and negative songs; macro AUCs are undefined")
        nan_ci = {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
        out.update(macro_roc_auc=dict(nan_ci), macro_pr_auc=dict(nan_ci), per_tag=per_tag)
        return out
    idx = _resample_indices(p.shape[0], n_boot, seed)
    boot_roc = np.empty((valid.size, idx.shape[0]))
    boot_pr = np.empty_like(boot_roc)
    for row, j in enumerate(valid):
        lab_j, score_j = labels[:, j][idx], p[:, j][idx]
        boot_roc[row], boot_pr[row] = _auc_rows(lab_j, score_j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all tags degenerate in a resample
        macro_roc, macro_pr = np.nanmean(boot_roc, axis=0), np.nanmean(boot_pr, axis=0)
    out.update(
        macro_roc_auc=_interval(float(np.mean(roc[valid])), macro_roc, 0.95, "macro_roc_auc"),
        macro_pr_auc=_interval(float(np.mean(pr[valid])), macro_pr, 0.95, "macro_pr_auc"),
        per_tag=per_tag,
    )
    return out


# --------------------------------------------------------------------------- paired comparison


def compare_paired(
    y_true: Sequence | np.ndarray,
    pred_a: Sequence | np.ndarray,
    pred_b: Sequence | np.ndarray,
    metric: str = "accuracy",
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> dict:
    """Paired bootstrap of ``metric(a) - metric(b)`` on the same songs.

    Both models are scored on the same resample each time, so song-to-song difficulty
    cancels out of the difference.

    Args:
        y_true: per-song targets, shape ``(n,)``: class indices, or scores (NaN = missing)
            for the score metrics.
        pred_a: model A's predictions, shape ``(n,)``: class indices for ``accuracy``,
            ``balanced_accuracy`` and ``macro_f1``; scores for ``spearman``, ``pearson``, ``mae``.
        pred_b: model B's predictions, same form.
        metric: one of :data:`PAIRED_METRICS`.
        n_boot: number of bootstrap resamples.
        seed: seed of the numpy Generator.

    Returns:
        ``{"metric", "n", "value_a", "value_b", "difference", "ci_low", "ci_high",
        "excludes_zero"}``; ``excludes_zero`` is True when the interval lies entirely above
        or below 0. For ``mae`` a negative difference means A is better.

    Raises:
        ParameterError: unknown metric, shapes disagree, or no songs.
    """
    _check_bootstrap_args(n_boot)
    if metric not in PAIRED_METRICS:
        raise ParameterError(f"metric={metric!r} is not supported; choose one of {list(PAIRED_METRICS)}")
    shapes = (np.shape(y_true), np.shape(pred_a), np.shape(pred_b))
    if len(shapes[0]) != 1 or not shapes[0] == shapes[1] == shapes[2]:
        raise ParameterError(f"y_true, pred_a and pred_b have shapes {shapes}; all must be (n,) on the same songs")
    if metric in _COUNT_METRICS:
        y = check_class_indices(y_true)
        a = check_class_indices(pred_a, name="pred_a")
        b = check_class_indices(pred_b, name="pred_b")
        if y.size == 0:
            raise ParameterError("compare_paired needs at least one song, got empty arrays")
        n_classes = int(max(y.max(), a.max(), b.max())) + 1
        fn = _COUNT_METRICS[metric]
        idx = _resample_indices(y.size, n_boot, seed)
        value_a, value_b = float(fn(_confusion_counts(y, a, n_classes))), float(fn(_confusion_counts(y, b, n_classes)))
        boot = fn(_confusion_counts(y, a, n_classes, idx)) - fn(_confusion_counts(y, b, n_classes, idx))
    else:
        yt = _check_scores(y_true, "y_true")
        a, b = _check_scores(pred_a, "pred_a"), _check_scores(pred_b, "pred_b")
        keep = ~np.isnan(yt)
        yt, a, b = yt[keep], a[keep], b[keep]
        if yt.size == 0:
            raise ParameterError("compare_paired needs at least one song with a target; all targets are NaN")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(yt))):
            raise ParameterError("pred_a and pred_b must be finite on songs with a target; fix the model output first")
        score = _SCORE_METRICS[metric]
        idx = _resample_indices(yt.size, n_boot, seed)
        value_a, value_b = float(score(yt, a)), float(score(yt, b))
        boot = score(yt[idx], a[idx]) - score(yt[idx], b[idx])
    ci = _interval(value_a - value_b, boot, 0.95, f"paired {metric}")
    low, high = ci["ci_low"], ci["ci_high"]
    return {
        "metric": metric,
        "n": int(idx.shape[1]),
        "value_a": value_a,
        "value_b": value_b,
        "difference": ci["value"],
        "ci_low": low,
        "ci_high": high,
        "excludes_zero": bool(np.isfinite(low) and np.isfinite(high) and (low > 0.0 or high < 0.0)),
    }
