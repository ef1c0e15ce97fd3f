"""Evaluating runs on held-out songs, and comparing runs on the same songs."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encore.data.manifest import Manifest
from encore.data.waveforms import load_waveforms
from encore.evaluate.report import to_jsonable
from encore.evaluate.metrics import classification_metrics, compare_paired, multilabel_metrics, regression_metrics
from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.inference import load_predictor

logger = logging.getLogger(__name__)

__all__ = ["TAG_THRESHOLD", "compare_results", "evaluate_run"]

#: A song counts as carrying a tag for ROC/PR-AUC when at least this share of its
#: tagging listeners used the tag (soft targets are listener shares, rarely near 1).
TAG_THRESHOLD = 0.3


def _read_history(run_dir: Path) -> list[dict[str, float]] | None:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    cache_dir: str | os.PathLike | None = None,
    waveforms: Mapping[str, np.ndarray | None] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Song-level metrics of one run on a split of the manifest it was trained from.

    Args:
        run_dir: A CNN or random-forest run folder.
        split: ``test`` (default) or ``val``.
        cache_dir: The workspace cache for decoded audio.
        waveforms: Already-decoded songs by track id, at the run's sample rate.
        n_boot: Bootstrap resamples for the intervals.
        seed: Bootstrap seed.

    Returns:
        A result dict as :func:`encore.evaluate.report.write_report` takes it; also
        written to ``run_dir/evaluation-<split>.json``.
    """
    run_dir = Path(run_dir)
    predictor = load_predictor(run_dir)
    card = predictor.card
    manifest_path = card.get("manifest", {}).get("path")
    if not manifest_path or not Path(manifest_path).is_file():
        raise ParameterError(f"run {run_dir} points at manifest {manifest_path!r}, which is missing; rebuild it with `encore labels`")
    manifest = Manifest.read(manifest_path)
    if manifest.digest() != card["manifest"]["digest"]:
        logger.warning("manifest %s changed since run %s was trained; evaluating on its current contents", manifest_path, run_dir)
    frame = manifest.subset(split)
    if waveforms is None:
        decoded, _ = load_waveforms(
            list(frame["path"]), sample_rate=predictor.sample_rate, cache=FeatureCache(cache_dir) if cache_dir else None
        )
        waveforms = dict(zip(frame["track_id"], decoded, strict=True))
    frame = frame[[waveforms.get(t) is not None for t in frame["track_id"]]].reset_index(drop=True)
    if frame.empty:
        raise ParameterError(f"the {split} split of {manifest_path} has no decodable songs to evaluate")
    arrays = predictor.predict_arrays([waveforms[t] for t in frame["track_id"]])

    result: dict[str, Any] = {
        "name": run_dir.name,
        "model": card.get("model_kwargs", {}).get("backbone", card.get("model_type")),
        "run_dir": str(run_dir),
        "split": split,
        "classification": None,
        "appeal": None,
        "tags": None,
        "history": _read_history(run_dir),
        "feature_importance": None,
    }
    predictions: dict[str, list[Any]] = {"track_id": list(frame["track_id"])}
    if "class_probs" in arrays:
        classes = manifest.class_targets(frame)
        known = classes >= 0
        if known.sum():
            result["classification"] = classification_metrics(
                classes[known], arrays["class_probs"][known], manifest.label_names, n_boot=n_boot, seed=seed
            )
        predictions["y_true"] = classes.tolist()
        predictions["y_pred"] = arrays["class_probs"].argmax(1).tolist()
    if "scores" in arrays:
        observed = manifest.regression_targets(frame)[:, 0]
        result["appeal"] = regression_metrics(observed, arrays["scores"][:, 0], n_boot=n_boot, seed=seed)
        predictions["appeal_true"] = [None if np.isnan(v) else float(v) for v in observed]
        predictions["appeal_pred"] = arrays["scores"][:, 0].astype(float).tolist()
    if "tag_probs" in arrays and manifest.tag_names:
        targets = manifest.tag_targets(frame)
        known = ~np.isnan(targets).any(axis=1)
        if known.sum() > 1:
            result["tags"] = multilabel_metrics(
                targets[known], arrays["tag_probs"][known], manifest.tag_names, threshold=TAG_THRESHOLD, seed=seed
            )
    importance = card.get("feature_importance", {}).get("classifier")
    if importance:
        ranked = sorted(zip(card["feature_names"], importance, strict=True), key=lambda p: -p[1])
        result["feature_importance"] = [{"feature": f, "importance": float(v)} for f, v in ranked]
    result["predictions"] = predictions
    (run_dir / f"evaluation-{split}.json").write_text(json.dumps(to_jsonable(result), indent=2, allow_nan=False), encoding="utf-8")
    return result


def compare_results(results: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Paired bootstrap differences between the first result and each other one, on shared songs."""
    comparisons: list[dict[str, Any]] = []
    if len(results) < 2:
        return comparisons
    base = results[0]
    for other in results[1:]:
        a, b = base["predictions"], other["predictions"]
        shared = [t for t in a["track_id"] if t in set(b["track_id"])]
        ia = {t: i for i, t in enumerate(a["track_id"])}
        ib = {t: i for i, t in enumerate(b["track_id"])}
        if "y_true" in a and "y_true" in b:
            rows = [t for t in shared if a["y_true"][ia[t]] >= 0]
            if len(rows) > 1:
                truth = np.array([a["y_true"][ia[t]] for t in rows])
                cmp = compare_paired(
                    truth, np.array([a["y_pred"][ia[t]] for t in rows]), np.array([b["y_pred"][ib[t]] for t in rows]),
                    metric="accuracy", n_boot=n_boot, seed=seed,
                )
                comparisons.append({**cmp, "a": base["name"], "b": other["name"], "metric": "accuracy"})
        if "appeal_true" in a and "appeal_pred" in b:
            rows = [t for t in shared if a["appeal_true"][ia[t]] is not None]
            if len(rows) > 2:
                cmp = compare_paired(
                    np.array([a["appeal_true"][ia[t]] for t in rows]),
                    np.array([a["appeal_pred"][ia[t]] for t in rows]),
                    np.array([b["appeal_pred"][ib[t]] for t in rows]),
                    metric="spearman", n_boot=n_boot, seed=seed,
                )
                comparisons.append({**cmp, "a": base["name"], "b": other["name"], "metric": "appeal spearman"})
    return comparisons
