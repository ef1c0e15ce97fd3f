"""Paired comparisons of evaluated runs on the songs they share.

Each run after the first is compared with the first on the songs both were evaluated
on, with a paired bootstrap (:func:`~encore.evaluate.metrics.compare_paired`): the same
resample of songs scores both runs, so the interval is of the difference itself.

- Same classes (CNN against the forest; before and after retraining): accuracy and
  macro-F1 on the shared songs whose label is the same in both runs' manifests.
- Different classes (one taxonomy against another on the same songs): accuracy, each
  run judged against its own labels, on the songs labelled in both; per-song
  correctness is compared, which is meaningful though the label sets differ.
- Scores: Spearman and MAE of appeal on the shared songs with an observed target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from encore.evaluate.metrics import compare_paired

__all__ = ["compare_pair", "compare_results"]


def _index(predictions: Mapping[str, Any]) -> dict[str, int]:
    return {t: i for i, t in enumerate(predictions.get("track_id", []))}


def _classification_pairs(a: Mapping, b: Mapping, same_classes: bool, shared: list[str], n_boot: int, seed: int) -> list[dict]:
    pa, pb = a["predictions"], b["predictions"]
    ia, ib = _index(pa), _index(pb)
    out: list[dict] = []
    if same_classes:
        rows = [t for t in shared if pa["y_true"][ia[t]] >= 0 and pa["y_true"][ia[t]] == pb["y_true"][ib[t]]]
        if len(rows) < 2:
            return out
        truth = np.array([pa["y_true"][ia[t]] for t in rows])
        pred_a = np.array([pa["y_pred"][ia[t]] for t in rows])
        pred_b = np.array([pb["y_pred"][ib[t]] for t in rows])
        for metric in ("accuracy", "macro_f1"):
            cmp = compare_paired(truth, pred_a, pred_b, metric=metric, n_boot=n_boot, seed=seed)
            out.append({**cmp, "metric": metric.replace("_", "-")})
        return out
    rows = [t for t in shared if pa["y_true"][ia[t]] >= 0 and pb["y_true"][ib[t]] >= 0]
    if len(rows) < 2:
        return out
    correct_a = np.array([int(pa["y_pred"][ia[t]] == pa["y_true"][ia[t]]) for t in rows])
    correct_b = np.array([int(pb["y_pred"][ib[t]] == pb["y_true"][ib[t]]) for t in rows])
    # accuracy of "correct" against an all-correct truth is the share of songs right
    cmp = compare_paired(np.ones(len(rows), dtype=np.int64), correct_a, correct_b, metric="accuracy", n_boot=n_boot, seed=seed)
    out.append({**cmp, "metric": "accuracy (own labels)"})
    return out


def _score_pairs(a: Mapping, b: Mapping, shared: list[str], n_boot: int, seed: int) -> list[dict]:
    pa, pb = a["predictions"], b["predictions"]
    ia, ib = _index(pa), _index(pb)
    rows = [t for t in shared if pa["appeal_true"][ia[t]] is not None]
    if len(rows) < 3:
        return []
    truth = np.array([pa["appeal_true"][ia[t]] for t in rows], dtype=np.float64)
    pred_a = np.array([pa["appeal_pred"][ia[t]] for t in rows], dtype=np.float64)
    pred_b = np.array([pb["appeal_pred"][ib[t]] for t in rows], dtype=np.float64)
    return [
        {**compare_paired(truth, pred_a, pred_b, metric=metric, n_boot=n_boot, seed=seed), "metric": f"appeal {metric}"}
        for metric in ("spearman", "mae")
    ]


def compare_pair(a: Mapping[str, Any], b: Mapping[str, Any], *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Paired differences ``metric(a) - metric(b)`` of two evaluated runs on their shared songs.

    Args:
        a: A result of :func:`~encore.evaluate.runs.evaluate_run`.
        b: Another one.
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        :func:`~encore.evaluate.metrics.compare_paired` dicts with ``a``, ``b``, ``metric``
        and ``same_classes`` added; empty when the runs share fewer than two usable songs.
    """
    pa, pb = a.get("predictions") or {}, b.get("predictions") or {}
    in_b = set(pb.get("track_id", []))
    shared = [t for t in pa.get("track_id", []) if t in in_b]
    same_classes = list(a.get("label_names") or []) == list(b.get("label_names") or [])
    out: list[dict[str, Any]] = []
    if "y_true" in pa and "y_true" in pb:
        out += _classification_pairs(a, b, same_classes, shared, n_boot, seed)
    if "appeal_true" in pa and "appeal_pred" in pb:
        out += _score_pairs(a, b, shared, n_boot, seed)
    return [{**c, "a": a["name"], "b": b["name"], "same_classes": same_classes} for c in out]


def compare_results(results: Sequence[Mapping[str, Any]], *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Paired differences between the first result and each other one (see :func:`compare_pair`)."""
    comparisons: list[dict[str, Any]] = []
    for other in results[1:]:
        comparisons += compare_pair(results[0], other, n_boot=n_boot, seed=seed)
    return comparisons
