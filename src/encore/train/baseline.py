"""The classical baseline: a random forest, gradient boosting, an SVM or a soft vote of them on handcrafted features.

Trained on the same manifest as the CNN (on every labelled song outside the test split), saved beside it in a run folder
(``model.joblib`` + ``model_card.json``) and read back through
:class:`encore.inference.baseline.BaselinePredictor`, so evaluation treats both alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from encore.config import BaselineConfig, EncoreConfig, save_config
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.features.extract import compute_feature_rows
from encore.features.handcrafted import (
    handcrafted_families,
    handcrafted_feature_names,
)
from encore.models.card import ClassicalCard, HandcraftedSettings, ManifestRecord, SegmentSettings
from encore.progress import ProgressHook, start_task
from encore.train.boosting import fit_boosting
from encore.train.objectives import SplitData, target_weights
from encore.train.selection import KeptColumns, rank_features, row_weight, select_features
from encore.train.transform import NormalScores, normal_scores

logger = logging.getLogger(__name__)

__all__ = ["BaselineResult", "fit_baseline", "fit_head", "training_songs"]


@dataclass
class BaselineResult:
    run_dir: Path
    feature_names: list[str]
    validation: dict[str, float]


TRAINED_ON = (
    "every labelled song outside the test split (the train and validation splits together): the classical "
    "models do not early-stop on held-out songs; feature selection and boosting's iteration count are chosen "
    "by inner cross-validation on these songs"
)


def training_songs(manifest: Manifest, waveforms: Mapping[str, np.ndarray | None]) -> SplitData:
    """The decodable songs of the train and validation splits together (all but the test songs)."""
    from encore.train.objectives import select_split

    parts = [select_split(manifest, name, waveforms) for name in ("train", "val")]
    joined: dict[str, Any] = {}
    for f in fields(SplitData):
        values = [getattr(part, f.name) for part in parts]
        if f.name in ("track_ids", "waveforms"):
            joined[f.name] = values[0] + values[1]
        elif any(v is None for v in values):
            joined[f.name] = None
        else:
            joined[f.name] = np.concatenate(values)
    return SplitData(**joined)


def _forest(config: BaselineConfig, classification: bool) -> RandomForestClassifier | RandomForestRegressor:
    common: dict[str, Any] = {
        "n_estimators": config.n_estimators,
        "max_depth": config.max_depth,
        "min_samples_leaf": config.min_samples_leaf,
        "max_features": config.max_features,
        "n_jobs": config.n_jobs,
        "random_state": config.seed,
    }
    if classification:
        return RandomForestClassifier(class_weight=None if config.class_weight == "none" else "balanced", **common)
    return RandomForestRegressor(**common)


@dataclass(frozen=True)
class HeadRows:
    """What one head trains on: the rows (songs or segments), their targets and what goes with them."""

    X: np.ndarray
    y: np.ndarray
    classification: bool
    sample_weight: np.ndarray | None = None  # per row, or per row and target (n_rows, n_targets)
    groups: np.ndarray | None = None  # each row's song when the rows are segments: inner folds keep a song whole


def _fit_forest(rows: HeadRows, config: BaselineConfig, entry: dict) -> tuple[Any, np.ndarray | None]:
    """A random forest and its impurity importances (a multi-output forest takes one weight a row)."""
    model = _forest(config, rows.classification).fit(rows.X, rows.y, sample_weight=row_weight(rows.sample_weight))
    return model, model.feature_importances_


def _fit_boosting(rows: HeadRows, config: BaselineConfig, entry: dict) -> tuple[Any, np.ndarray | None]:
    """Gradient boosting, its number of iterations chosen on inner folds (recorded in ``entry``); no importances of its own."""
    bo = config.boosting
    params = {
        "learning_rate": bo.learning_rate,
        "max_leaf_nodes": bo.max_leaf_nodes,
        "min_samples_leaf": bo.min_samples_leaf,
        "l2_regularization": bo.l2_regularization,
    }
    model, entry["boosting"] = fit_boosting(
        rows.X,
        rows.y,
        classification=rows.classification,
        params=params,
        max_iter=bo.max_iter,
        n_folds=config.inner_folds,
        seed=config.seed,
        sample_weight=rows.sample_weight,
        n_threads=bo.n_threads,
        groups=rows.groups,
    )
    return model, None


def _fit_svm(rows: HeadRows, config: BaselineConfig, entry: dict) -> tuple[Any, np.ndarray | None]:
    """An RBF SVM, ``C`` and ``gamma`` chosen on inner folds (recorded in ``entry``); no importances of its own."""
    from encore.train.svm import fit_svm

    model, entry["svm"] = fit_svm(
        rows.X,
        rows.y,
        classification=rows.classification,
        c_grid=config.svm.c_grid,
        gamma_scales=config.svm.gamma_scales,
        n_folds=config.inner_folds,
        seed=config.seed,
        sample_weight=rows.sample_weight,
        groups=rows.groups,
        n_jobs=config.n_jobs,
    )
    return model, None


def _fit_ensemble(rows: HeadRows, config: BaselineConfig, entry: dict) -> tuple[Any, np.ndarray | None]:
    """Soft voting over ``baseline.ensemble.members``, each fitted (and its settings chosen) as it would be alone.

    Each member's choices go into ``entry`` under its own key (``svm``, ``boosting``) as
    they do alone; the importances are the forest's when a forest votes.
    """
    from encore.train.vote import SoftVote

    ec = config.ensemble
    models, importance = [], None
    for member in ec.members:
        model, own = ESTIMATORS[member](rows, config, entry)
        models.append(model)
        importance = own if importance is None else importance
    vote = SoftVote(models, ec.weights)
    entry["ensemble"] = {"members": list(ec.members), "weights": [float(w) for w in vote.weights], "voting": "soft"}
    return vote, importance


ESTIMATORS: dict[str, Callable[..., tuple[Any, np.ndarray | None]]] = {
    "random_forest": _fit_forest,
    "gradient_boosting": _fit_boosting,
    "svm": _fit_svm,
    "ensemble": _fit_ensemble,
}
"""``baseline.estimator`` -> ``fit(rows, config, entry)`` giving ``(model, importances or None)``; one row per
classical estimator. Each records what it chose in ``entry`` (the head's part of the card)."""


def fit_head(
    X: np.ndarray,
    y: np.ndarray,
    config: BaselineConfig,
    *,
    classification: bool,
    names: Sequence[str],
    sample_weight: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    transform: str = "none",
) -> tuple[Any, dict[str, Any]]:
    """One head (class, tag shares or scores): optional selection, then the forest, boosting, the SVM or their vote.

    Args:
        X: Training features ``(n_rows, n_features)``, every handcrafted feature: one row a
            song, or one a segment.
        y: Class indices ``(n_rows,)`` or targets ``(n_rows,)`` / ``(n_rows, n_targets)``.
        config: The ``baseline`` settings.
        classification: Whether ``y`` holds classes.
        names: Feature names, one per column of ``X``.
        sample_weight: Optional weight per row, or per row and target ``(n_rows, n_targets)``:
            the models fitted one target at a time (the SVM's SVRs, boosting) take each
            target's own, the forest and the selection's ranking the mean over targets.
        groups: Each row's song when the rows are segments; every inner fold (selection,
            the SVM's grid and Platt scaling, boosting's early stopping) keeps a song whole.
        transform: ``"normal_scores"``: a regression head fits the normal scores of its
            targets' ranks among the songs and predicts on the targets' scale
            (:class:`~encore.train.transform.NormalScores`; ``baseline.score_transform``).

    Returns:
        ``(model, entry)``: the model reads the full feature vector (a :class:`KeptColumns`
        when features were selected); ``entry`` is the head's part of the model card.
    """
    sc = config.selection
    entry: dict[str, Any] = {}
    knots = None
    if transform == "normal_scores" and not classification:
        knots, y = normal_scores(y, groups)
        entry["target_transform"] = "normal scores of the training songs' ranks, mapped back to the score's scale"
    ranking: dict[str, Any] = {
        "classification": classification,
        "n_estimators": sc.n_estimators,
        "seed": config.seed,
        "n_jobs": config.n_jobs,
        "sample_weight": row_weight(sample_weight),
    }
    if sc.enabled:
        selection = select_features(X, y, fractions=sc.fractions, n_folds=config.inner_folds, groups=groups, **ranking)
        columns, importance = selection.columns, selection.importance
        entry["selection"] = {
            "kept": [names[c] for c in columns],
            "importance": [float(importance[c]) for c in columns],
            "n_kept": len(columns),
            "n_features": X.shape[1],
            "candidates": selection.candidates,
            "inner_scores": selection.scores,
            "inner_score_sd": selection.score_sd,
            "metric": selection.metric,
            "rule": "fewest features within one standard error of the best inner-fold score",
        }
    else:
        columns, importance = list(range(X.shape[1])), None
    rows = HeadRows(X[:, columns], y, classification, sample_weight, groups)
    model, own_importance = ESTIMATORS[config.estimator](rows, config, entry)
    if importance is None:  # no selection: the estimator's own ranking, or (boosting has none) a forest's
        importance = own_importance if own_importance is not None else rank_features(X, y, **ranking)
    entry["importance"] = [float(v) for v in importance]
    entry["columns"] = [int(c) for c in columns]
    if sc.enabled:
        model = KeptColumns(model, columns)
    if knots is not None:
        model = NormalScores(model, knots)
    return model, entry


def fit_baseline(
    manifest: Manifest,
    waveforms: Mapping[str, np.ndarray | None],
    config: EncoreConfig,
    run_dir: str | os.PathLike,
    *,
    manifest_path: str | None = None,
    cache: FeatureCache | None = None,
    progress: ProgressHook | None = None,
) -> BaselineResult:
    """Fit the classical models (class, score and tag-share heads) on every labelled song outside the test split.

    ``config.baseline.estimator`` picks a random forest, gradient boosting, an SVM or a
    soft vote of several (``baseline.ensemble.members``);
    ``config.baseline.selection.enabled`` keeps only the most important features (see
    :func:`fit_head`). The run folder gets ``model.joblib``, ``model_card.json`` (feature
    names and families, importances, the kept features, the songs trained on) and
    ``config.yaml``. ``progress`` gets a task for the songs' features (one unit a song).

    Raises:
        ParameterError: No decodable song outside the test split.
    """
    from encore.inference.baseline import BaselinePredictor

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    bc, sample_rate = config.baseline, config.features.sample_rate
    songs = training_songs(manifest, waveforms)
    if not songs.track_ids:
        raise ParameterError("the manifest has no decodable songs outside the test split; check `encore labels` output")
    features, owner = compute_feature_rows(
        songs.waveforms,
        sample_rate=sample_rate,
        n_fft=bc.n_fft,
        hop_length=bc.hop_length,
        segment_seconds=bc.segment_seconds,
        max_segments=bc.max_segments,
        cache=cache,
        callback=start_task(progress, f"features of {len(songs.track_ids)} training songs", len(songs.track_ids)),
    )
    segmented = bc.segment_seconds is not None  # then inner folds keep each song's segments together
    names = handcrafted_feature_names()
    models: dict[str, Any] = {}
    heads: dict[str, dict[str, Any]] = {}
    labelled = songs.classes[owner] >= 0
    if manifest.label_names and len(np.unique(owner[labelled])) >= 2:
        models["classifier"], heads["classifier"] = fit_head(
            features[labelled],
            songs.classes[owner[labelled]],
            bc,
            classification=True,
            names=names,
            groups=owner[labelled] if segmented else None,
        )
    # one model per kind of numeric target (scores, tag shares), on the songs that have all of it;
    # each target keeps its own weight (a multi-output forest takes their mean: selection.row_weight)
    tag_weights, score_weights = target_weights(songs, bc.target_weighting)
    for name, targets, weights in (("regressor", songs.scores, score_weights), ("tagger", songs.tags, tag_weights)):
        if not targets.size:
            continue
        known = ~np.isnan(targets[owner]).any(axis=1)
        if len(np.unique(owner[known])) >= 2:
            y = targets[owner[known]]
            models[name], heads[name] = fit_head(
                features[known],
                y[:, 0] if y.shape[1] == 1 else y,
                bc,
                classification=False,
                names=names,
                sample_weight=None if bc.target_weighting == "none" else weights[owner[known]],
                groups=owner[known] if segmented else None,
                transform=bc.score_transform if name == "regressor" else "none",
            )
    card = ClassicalCard(
        model_type=bc.estimator,
        sample_rate=sample_rate,
        feature_settings=HandcraftedSettings(sample_rate=sample_rate, n_fft=bc.n_fft, hop_length=bc.hop_length),
        segments=SegmentSettings(seconds=bc.segment_seconds, max_segments=bc.max_segments) if segmented else None,
        feature_names=names,
        feature_families=handcrafted_families(),
        label_names=list(manifest.label_names),
        regression_names=list(manifest.regression_names),
        tag_names=list(manifest.tag_names),
        classes_=[int(c) for c in models["classifier"].classes_] if "classifier" in models else [],
        feature_importance={head: entry.pop("importance") for head, entry in heads.items()},
        importance_kind="random-forest impurity importance on the training songs",
        heads=heads,
        trained_on={
            "splits": ["train", "val"],
            "n_songs": len(songs.track_ids),
            **({"n_segments": len(owner)} if segmented else {}),
            "note": TRAINED_ON,
        },
        config=config.model_dump(mode="json"),
        manifest=ManifestRecord(path=manifest_path, digest=manifest.digest(), summary=manifest.summary()),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        metrics={"validation": {}},  # no held-out songs outside the test split: the inner folds choose settings
    )
    joblib.dump(models, run_dir / "model.joblib")
    BaselinePredictor(models, card)  # checks the card reads back
    card.write(run_dir / "model_card.json")
    kept = {head: entry["selection"]["n_kept"] for head, entry in heads.items() if "selection" in entry}
    logger.info("%s trained on %d songs%s", bc.estimator, len(songs.track_ids), f", features kept {kept}" if kept else "")
    return BaselineResult(run_dir=run_dir, feature_names=names, validation={})
