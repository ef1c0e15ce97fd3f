"""The numbers of a cross-validation, from its held-out predictions.

For each model and seed the held-out folds are pooled (every song predicted once, by the
model that never trained on it) and scored with :mod:`encore.evaluate.metrics`: class
metrics with bootstrap intervals, Spearman / Pearson / MAE of each score and of each
tag's listener share, the tags' mean Spearman. Each fold is also scored on its own
(point values). Over seeds: the mean and the standard deviation of each pooled figure.

Models are compared in pairs on the songs both predicted, with a paired bootstrap over
songs: one resample of songs scores both models in every seed, and the statistic is the
difference of their metrics averaged over the seeds. With one seed this is exactly
:func:`encore.evaluate.metrics.compare_paired`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from encore.data.manifest import Manifest
from encore.evaluate.bootstrap import _COUNT_METRICS, _SCORE_METRICS, _confusion_counts, _interval, _resample_indices
from encore.evaluate.metrics import (
    classification_metrics,
    multilabel_metrics,
    regression_metrics,
)
from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = ["headline_keys", "paired_over_seeds", "pooled_metrics", "summarise_cv"]

#: A song counts as carrying a tag for the tag ROC/PR-AUC at this listener share (as `encore evaluate`).
TAG_THRESHOLD = 0.3
MEAN_TAG_SPEARMAN = "mean_tag_spearman"


def _columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c[len(prefix) :] for c in frame.columns if c.startswith(prefix)]


def score_names(frame: pd.DataFrame) -> list[str]:
    """Scores the predictions hold (``pred:<name>`` columns that are not tags or the label)."""
    return [c for c in _columns(frame, "pred:") if c != "label" and not c.startswith("tag:")]


def tag_names(frame: pd.DataFrame) -> list[str]:
    return _columns(frame, "pred:tag:")


def _class_arrays(frame: pd.DataFrame, label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (-1 = unlabelled) and probabilities in ``label_names`` order."""
    index = {n: i for i, n in enumerate(label_names)}
    truth = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in frame["true:label"]], dtype=np.int64)
    probs = frame[[f"prob:{n}" for n in label_names]].to_numpy(dtype=np.float64)
    return truth, probs


def pooled_metrics(
    frame: pd.DataFrame, label_names: Sequence[str], *, n_boot: int = 1000, seed: int = 0, point_only: bool = False
) -> dict[str, Any]:
    """Metrics of one set of held-out predictions (one seed; all folds or one).

    Args:
        frame: Rows of a predictions file (see :func:`encore.evaluate.cv.heldout_frame`).
        label_names: The manifest's classes.
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.
        point_only: Only the headline values (no intervals, tables or figures), for folds.

    Returns:
        ``{"n", "headline": {key: value}}`` and, unless ``point_only``, ``classification``,
        ``scores`` and ``tag_spearman`` (metrics dicts with intervals) and ``tags`` (ROC/PR-AUC).
    """
    out: dict[str, Any] = {"n": int(len(frame)), "headline": {}}
    head = out["headline"]
    if "true:label" in frame and label_names:
        truth, probs = _class_arrays(frame, label_names)
        known = truth >= 0
        if known.sum():
            cls = classification_metrics(truth[known], probs[known], label_names, n_boot=1 if point_only else n_boot, seed=seed)
            head.update({k: cls[k]["value"] for k in ("accuracy", "balanced_accuracy", "macro_f1")})
            if not point_only:
                out["classification"] = cls
    for kind, names, prefix in (("scores", score_names(frame), ""), ("tag_spearman", tag_names(frame), "tag:")):
        metrics: dict[str, Any] = {}
        for name in names:
            truth = frame[f"true:{prefix}{name}"].to_numpy(dtype=np.float64)
            if np.isnan(truth).all():
                continue
            m = regression_metrics(
                truth, frame[f"pred:{prefix}{name}"].to_numpy(dtype=np.float64), n_boot=1 if point_only else n_boot, seed=seed
            )
            head[f"spearman:{prefix}{name}"] = m["spearman"]["value"]
            metrics[name] = m
            if kind == "scores" and not point_only and "scatter" not in out:  # the report's observed-against-predicted plot
                out["scatter"] = {
                    "appeal_true": [None if np.isnan(v) else float(v) for v in truth],
                    "appeal_pred": frame[f"pred:{name}"].astype(float).tolist(),
                }
        if not point_only:
            out[kind] = metrics or None
    tag_values = [v for k, v in head.items() if k.startswith("spearman:tag:") and np.isfinite(v)]
    if tag_values:
        head[MEAN_TAG_SPEARMAN] = float(np.mean(tag_values))
    if not point_only and tag_names(frame):
        names = tag_names(frame)
        targets = frame[[f"true:tag:{t}" for t in names]].to_numpy(dtype=np.float64)
        known = ~np.isnan(targets).any(axis=1)
        if known.sum() > 1:
            out["tags"] = multilabel_metrics(
                targets[known],
                frame.loc[known, [f"pred:tag:{t}" for t in names]].to_numpy(),
                names,
                threshold=TAG_THRESHOLD,
                seed=seed,
            )
    return out


def headline_keys(frame: pd.DataFrame, label_names: Sequence[str]) -> list[str]:
    """The figures reported per fold, per seed and over seeds, in report order."""
    keys = ["accuracy", "balanced_accuracy", "macro_f1"] if label_names and "true:label" in frame else []
    keys += [f"spearman:{s}" for s in score_names(frame)]
    if tag_names(frame):
        keys += [MEAN_TAG_SPEARMAN] + [f"spearman:tag:{t}" for t in tag_names(frame)]
    return keys


def _spread(values: Sequence[float]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return {
        "mean": float(np.mean(finite)) if finite else None,
        "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
        "values": [float(v) for v in values],
    }


# --------------------------------------------------------------------------- paired comparison


def paired_over_seeds(
    truth: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    metric: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap of the seed-mean of ``metric(a) - metric(b)`` on the same songs.

    Args:
        truth: ``(n,)`` class indices or scores (NaN = no target), or ``(n, k)`` for
            ``mean_spearman`` (the mean of k columns' Spearman; a song with any NaN is dropped).
        preds_a: One ``(n,)`` (or ``(n, k)``) array per seed, same songs, model A.
        preds_b: The same for model B, the same seeds.
        metric: ``accuracy``, ``balanced_accuracy``, ``macro_f1`` (class indices),
            ``spearman``, ``pearson``, ``mae`` or ``mean_spearman`` (scores).
        n_boot: Bootstrap resamples; every seed is scored on the same resamples.
        seed: Bootstrap seed.

    Returns:
        As :func:`~encore.evaluate.metrics.compare_paired`, the values being seed means,
        plus ``seeds``.

    Raises:
        ParameterError: an unknown metric, no seed, or no song with a target.
    """
    if len(preds_a) != len(preds_b) or not preds_a:
        raise ParameterError(f"paired comparison needs the same seeds for both models, got {len(preds_a)} and {len(preds_b)}")
    y = np.asarray(truth)
    if metric in _COUNT_METRICS:
        keep = y >= 0
    elif metric in _SCORE_METRICS or metric == "mean_spearman":
        y = y.astype(np.float64)
        keep = ~np.isnan(y).any(axis=1) if y.ndim == 2 else ~np.isnan(y)
    else:
        raise ParameterError(f"metric={metric!r} is not supported for a paired comparison")
    if keep.sum() == 0:
        raise ParameterError(f"no song has a target for the paired {metric}")
    y = y[keep]
    idx = _resample_indices(len(y), n_boot, seed)

    def stat(pred: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        pred = np.asarray(pred)[keep]
        if metric in _COUNT_METRICS:
            k = int(max(y.max(), pred.max())) + 1
            return _COUNT_METRICS[metric](_confusion_counts(y, pred.astype(np.int64), k, rows))
        if metric == "mean_spearman":
            fn = _SCORE_METRICS["spearman"]
            cols = [fn(y[:, j], pred[:, j]) if rows is None else fn(y[:, j][rows], pred[:, j][rows]) for j in range(y.shape[1])]
            return np.mean(cols, axis=0)
        fn = _SCORE_METRICS[metric]
        return fn(y, pred.astype(np.float64)) if rows is None else fn(y[rows], pred.astype(np.float64)[rows])

    value_a = float(np.mean([stat(p, None) for p in preds_a]))
    value_b = float(np.mean([stat(p, None) for p in preds_b]))
    boot = np.mean([stat(a, idx) - stat(b, idx) for a, b in zip(preds_a, preds_b, strict=True)], axis=0)
    ci = _interval(value_a - value_b, boot, 0.95, f"paired {metric}")
    low, high = ci["ci_low"], ci["ci_high"]
    return {
        "metric": metric,
        "n": int(len(y)),
        "value_a": value_a,
        "value_b": value_b,
        "difference": ci["value"],
        "ci_low": low,
        "ci_high": high,
        "seeds": len(preds_a),
        "excludes_zero": bool(np.isfinite(low) and np.isfinite(high) and (low > 0.0 or high < 0.0)),
    }


def _compare(a: str, b: str, frames: Mapping[str, pd.DataFrame], label_names: Sequence[str], n_boot: int) -> list[dict]:
    fa, fb = frames[a], frames[b]
    seeds = sorted(set(fa["seed"]) & set(fb["seed"]))
    if not seeds:
        return []
    shared = set.intersection(*(set(f.loc[f["seed"] == s, "track_id"]) for f in (fa, fb) for s in seeds))
    if len(shared) < 3:
        return []
    order = sorted(shared)

    def rows(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        return frame[frame["seed"] == seed].set_index("track_id").loc[order]

    by_seed = {m: [rows(frames[m], s) for s in seeds] for m in (a, b)}
    first = by_seed[a][0]
    out = []
    tasks: list[tuple[str, str, np.ndarray, Any]] = []
    if "true:label" in first and label_names:
        truth, _ = _class_arrays(first, label_names)
        pred = lambda f: _class_arrays(f, label_names)[1].argmax(1)  # noqa: E731
        tasks += [("accuracy", "accuracy", truth, pred), ("macro_f1", "macro-F1", truth, pred)]
    for name in [s for s in score_names(fa) if s in score_names(fb)]:
        truth = first[f"true:{name}"].to_numpy(float)
        tasks.append(("spearman", f"{name} Spearman", truth, lambda f, c=f"pred:{name}": f[c].to_numpy()))
    tags = [t for t in tag_names(fa) if t in tag_names(fb)]
    if tags:
        truth = first[[f"true:tag:{t}" for t in tags]].to_numpy(float)
        tasks.append(
            ("mean_spearman", "tags' mean Spearman", truth, lambda f: f[[f"pred:tag:{t}" for t in tags]].to_numpy(float))
        )
        for t in tags:
            truth = first[f"true:tag:{t}"].to_numpy(float)
            tasks.append(("spearman", f"{t} Spearman", truth, lambda f, c=f"pred:tag:{t}": f[c].to_numpy()))
    for metric, label, truth, pred in tasks:
        try:
            result = paired_over_seeds(truth, [pred(f) for f in by_seed[a]], [pred(f) for f in by_seed[b]], metric, n_boot=n_boot)
        except ParameterError as err:
            logger.info("%s - %s %s left out: %s", a, b, label, err)
            continue
        out.append({**result, "a": a, "b": b, "metric": label})
    return out


# --------------------------------------------------------------------------- the whole summary


def _ceilings(manifest: Manifest) -> dict[str, Any]:
    reliability = manifest.info.get("reliability") or {}
    wanted = list(manifest.regression_names) + [f"tag:{t}" for t in manifest.tag_names]
    return {k: dict(reliability[k]) for k in wanted if isinstance(reliability.get(k), Mapping)}


def _data_summary(manifest: Manifest, folds: pd.DataFrame) -> dict[str, Any]:
    alone = folds["group"].str.startswith("(no artist) ")
    per_fold = []
    for fold, rows in folds.groupby("fold"):
        labels = rows["label"].dropna().value_counts().sort_index()
        per_fold.append(
            {
                "fold": int(fold),
                "songs": int(len(rows)),
                "artist_groups": int(rows["group"].nunique()),
                "labels": {str(k): int(v) for k, v in labels.items()},
            }
        )
    return {
        "songs": int(len(folds)),
        "artist_groups": int(folds["group"].nunique()),
        "songs_without_artist": int(alone.sum()),
        "labelled": int(folds["label"].notna().sum()),
        "label_names": list(manifest.label_names),
        "tag_names": list(manifest.tag_names),
        "score_names": list(manifest.regression_names),
        "folds": per_fold,
    }


def novelty_false_alarms(frame: pd.DataFrame) -> dict[str, Any] | None:
    """How often a model's novelty threshold flagged its own held-out songs, as ``novelty_sentence`` reads it.

    Every held-out song is of the catalogue's own kind, so each flag is a false alarm. The
    count and its Wilson 95 % interval are the first seed's (each song once); ``per_seed``
    gives every seed's share. None where the model gives no calibrated novelty score (a
    classical model).
    """
    from encore.evaluate.metrics import flagged_share

    if "novel" not in frame or not frame["novel"].notna().any():
        return None
    rows = frame[frame["novel"].notna()]
    seeds = sorted(int(s) for s in rows["seed"].unique())
    first = rows[rows["seed"] == seeds[0]]
    percentile = pd.to_numeric(first.get("novelty_percentile"), errors="coerce").dropna()
    return {
        **flagged_share(first["novel"].astype(bool).to_numpy(), None if percentile.empty else float(percentile.median())),
        "reference": None,
        "reference_songs": None,
        "seed": seeds[0],
        "per_seed": {str(s): float(rows[rows["seed"] == s]["novel"].astype(bool).mean()) for s in seeds},
    }


def cv_novelty_sentence(novelty: Mapping) -> str:
    """:func:`novelty_false_alarms` in words: the first seed's count, then every seed's share."""
    from encore.evaluate.report import novelty_sentence

    shares = ", ".join(f"{100 * v:.1f} %" for v in novelty["per_seed"].values())
    seeds = f" (seed {novelty['seed']}; every seed: {shares})" if len(novelty["per_seed"]) > 1 else ""
    return "held-out songs, every flag a false alarm" + seeds + ": " + novelty_sentence(novelty)


def summarise_cv(
    manifest: Manifest,
    folds: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    *,
    kinds: Mapping[str, str] | None = None,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """The report of a cross-validation.

    Args:
        manifest: The workspace manifest the folds were dealt from.
        folds: :func:`~encore.evaluate.cv.assign_folds` output.
        predictions: Model name -> its held-out predictions (all seeds and folds).
        kinds: Model name -> model kind.
        n_boot: Bootstrap resamples.

    Returns:
        ``{"data", "ceilings", "models": {name: {"kind", "seeds": {seed: pooled}, "folds":
        [per fold and seed], "over_seeds": {key: {"mean", "sd", "values"}}, "train_seconds"}},
        "comparisons"}``.
    """
    label_names = list(manifest.label_names)
    models: dict[str, Any] = {}
    for name, frame in predictions.items():
        keys = headline_keys(frame, label_names)
        seeds = sorted(int(s) for s in frame["seed"].unique())
        per_seed, per_fold = {}, []
        for s in seeds:
            rows = frame[frame["seed"] == s]
            per_seed[str(s)] = pooled_metrics(rows, label_names, n_boot=n_boot)
            for fold, fold_rows in rows.groupby("fold"):
                metrics = pooled_metrics(fold_rows, label_names, point_only=True)
                per_fold.append(
                    {
                        "seed": s,
                        "fold": int(fold),
                        "n": metrics["n"],
                        **metrics["headline"],
                        "train_seconds": float(fold_rows["train_seconds"].iloc[0]),
                    }
                )
        complete = {s: per_seed[str(s)]["n"] for s in seeds}
        models[name] = {
            "kind": (kinds or {}).get(name),
            "headline_keys": keys,
            "seeds": per_seed,
            "folds": per_fold,
            "songs_per_seed": complete,
            "over_seeds": {k: _spread([per_seed[str(s)]["headline"].get(k, float("nan")) for s in seeds]) for k in keys},
            "train_seconds": _spread([f["train_seconds"] for f in per_fold]),
            "novelty": novelty_false_alarms(frame),
        }
    comparisons = []
    for a, b in itertools.combinations(list(predictions), 2):
        comparisons += _compare(a, b, predictions, label_names, n_boot)
    return {"data": _data_summary(manifest, folds), "ceilings": _ceilings(manifest), "models": models, "comparisons": comparisons}
