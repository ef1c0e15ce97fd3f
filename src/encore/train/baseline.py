"""The classical baseline: random forests on handcrafted features.

Trained on the same manifest and splits as the CNN, saved beside it in a run folder
(``model.joblib`` + ``model_card.json``) and read back through
:class:`encore.inference.baseline.BaselinePredictor`, so evaluation treats both alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import encore
from encore.config import EncoreConfig, save_config
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.features.handcrafted import compute_handcrafted, handcrafted_feature_names

logger = logging.getLogger(__name__)

__all__ = ["BaselineResult", "compute_feature_matrix", "fit_baseline"]

FEATURES_VERSION = 1


@dataclass
class BaselineResult:
    run_dir: Path
    feature_names: list[str]
    validation: dict[str, float]


def feature_settings(sample_rate: int, n_fft: int, hop_length: int) -> dict[str, Any]:
    return {"kind": "handcrafted", "version": FEATURES_VERSION, "sample_rate": sample_rate, "n_fft": n_fft, "hop_length": hop_length}


def compute_feature_matrix(
    waveforms: Sequence[np.ndarray],
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    cache: FeatureCache | None = None,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(n_songs, n_features) handcrafted features, cached by the waveform's content."""
    settings = feature_settings(sample_rate, n_fft, hop_length)
    rows = []
    for waveform in waveforms:
        compute = lambda w=waveform: compute_handcrafted(w, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length)  # noqa: E731
        if cache is None:
            rows.append(compute())
        else:
            digest = hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).tobytes()).hexdigest()
            rows.append(cache.get_or_compute(digest, settings, compute))
        if callback is not None:
            callback(1)
    return np.stack(rows).astype(np.float32)


def fit_baseline(
    manifest: Manifest,
    waveforms: Mapping[str, np.ndarray | None],
    config: EncoreConfig,
    run_dir: str | os.PathLike,
    *,
    manifest_path: str | None = None,
    cache: FeatureCache | None = None,
    callback: Callable[[int], None] | None = None,
) -> BaselineResult:
    """Fit a class forest and a score forest on the train split; record val metrics."""
    from encore.inference.baseline import BaselinePredictor
    from encore.train.objectives import select_split, target_weights, validation_metrics

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    bc, sample_rate = config.baseline, config.features.sample_rate
    train = select_split(manifest, "train", waveforms)
    if not train.track_ids:
        raise ParameterError("the manifest's train split has no decodable songs; check `encore labels` output")
    features = compute_feature_matrix(
        train.waveforms, sample_rate=sample_rate, n_fft=bc.n_fft, hop_length=bc.hop_length, cache=cache, callback=callback
    )
    names = handcrafted_feature_names()
    common = dict(
        n_estimators=bc.n_estimators, max_depth=bc.max_depth, min_samples_leaf=bc.min_samples_leaf,
        max_features=bc.max_features, n_jobs=bc.n_jobs, random_state=bc.seed,
    )
    models: dict[str, Any] = {}
    importances: dict[str, list[float]] = {}
    labelled = train.classes >= 0
    if manifest.label_names and labelled.sum() >= 2:
        clf = RandomForestClassifier(class_weight=None if bc.class_weight == "none" else "balanced", **common)
        clf.fit(features[labelled], train.classes[labelled])
        models["classifier"] = clf
        importances["classifier"] = clf.feature_importances_.tolist()
    # one forest per kind of numeric target (scores, tag shares), on the songs that have all of it
    # a multi-output forest takes one weight per song: the mean of its targets' weights
    tag_weights, score_weights = target_weights(train, bc.target_weighting)
    for name, targets, weights in (("regressor", train.scores, score_weights), ("tagger", train.tags, tag_weights)):
        known = ~np.isnan(targets).any(axis=1) if targets.size else np.zeros(0, dtype=bool)
        if known.sum() >= 2:
            forest = RandomForestRegressor(**common)
            y = targets[known]
            sample_weight = None if bc.target_weighting == "none" else weights[known].mean(axis=1)
            forest.fit(features[known], y[:, 0] if y.shape[1] == 1 else y, sample_weight=sample_weight)
            models[name] = forest
            importances[name] = forest.feature_importances_.tolist()
    card: dict[str, Any] = {
        "model_type": "random_forest",
        "encore_version": encore.__version__,
        "sample_rate": sample_rate,
        "feature_settings": feature_settings(sample_rate, bc.n_fft, bc.hop_length),
        "feature_names": names,
        "label_names": list(manifest.label_names),
        "regression_names": list(manifest.regression_names),
        "tag_names": list(manifest.tag_names),
        "classes_": [int(c) for c in models["classifier"].classes_] if "classifier" in models else [],
        "feature_importance": importances,
        "config": config.model_dump(mode="json"),
        "manifest": {"path": manifest_path, "digest": manifest.digest(), "summary": manifest.summary()},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    joblib.dump(models, run_dir / "model.joblib")
    predictor = BaselinePredictor(models, card)
    val = select_split(manifest, "val", waveforms)
    validation = validation_metrics(predictor.predict_arrays(val.waveforms), val) if val.track_ids else {}
    card["metrics"] = {"validation": validation}
    (run_dir / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    logger.info("random forest trained on %d songs: %s", len(train.track_ids), validation)
    return BaselineResult(run_dir=run_dir, feature_names=names, validation=validation)
