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
from collections.abc import Sequence
from typing import Any

import numpy as np

from encore.evaluate.bootstrap import (
    _COUNT_METRICS,
    _SCORE_METRICS,
    _auc_rows,
    _check_bootstrap_args,
    _check_scores,
    _confusion_counts,
    _interval,
    _resample_indices,
    bootstrap_ci,
)
from encore.evaluate.calibration import check_class_indices, check_probs, expected_calibration_error, reliability_bins
from encore.exceptions import ParameterError

__all__ = [
    "PAIRED_METRICS",
    "bootstrap_ci",
    "classification_metrics",
    "compare_paired",
    "flagged_share",
    "multilabel_metrics",
    "regression_metrics",
]

logger = logging.getLogger(__name__)

#: Metrics :func:`compare_paired` accepts; the first three take class indices, the rest scores.
PAIRED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "spearman", "pearson", "mae")


# --------------------------------------------------------------------------- classification


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


def flagged_share(flagged: np.ndarray, threshold_percentile: float | None) -> dict[str, Any]:
    """How many songs a novelty threshold flagged: count, share and its Wilson 95 % interval.

    On songs of the catalogue's own kind every flag is a false alarm, and a threshold at
    the reference songs' ``threshold_percentile`` expects ``1 - percentile / 100`` of them
    (``expected_share``; None without a percentile).
    """
    from scipy.stats import binomtest

    flagged = np.asarray(flagged, dtype=bool)
    n, k = int(flagged.size), int(flagged.sum())
    interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {
        "n": n,
        "flagged": k,
        "share": k / n,
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "threshold_percentile": threshold_percentile,
        "expected_share": None if threshold_percentile is None else 1.0 - float(threshold_percentile) / 100.0,
    }
