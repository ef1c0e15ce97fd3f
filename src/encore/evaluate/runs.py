"""Evaluating one run on held-out songs: metrics, calibration and global importances.

:func:`evaluate_run` rebuilds the model from its run folder (CNN checkpoint or forest
card), reads the manifest it was trained from (or another one given), predicts the
split's songs and returns the result dict :func:`~encore.evaluate.report.write_report`
draws. Comparisons between runs are in :mod:`encore.evaluate.compare`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.data.manifest import Manifest
from encore.data.waveforms import decode_songs
from encore.evaluate.calibration import expected_calibration_error
from encore.evaluate.compare import compare_results
from encore.evaluate.metrics import classification_metrics, flagged_share, multilabel_metrics, regression_metrics
from encore.evaluate.report import to_jsonable
from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.inference import BlendPredictor, Predictor, SongPredictor, load_predictor
from encore.models.card import BlendCard, ClassicalCard, ModelCard, NoveltyCalibration

logger = logging.getLogger(__name__)

__all__ = ["TAG_THRESHOLD", "compare_results", "evaluate_run", "novelty_rate", "run_manifest_path"]

#: A song counts as carrying a tag for ROC/PR-AUC when at least this share of its
#: tagging listeners used the tag (soft targets are listener shares, rarely near 1).
TAG_THRESHOLD = 0.3


def _read_history(run_dir: Path) -> list[dict[str, float]] | None:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def run_manifest_path(card: ModelCard | ClassicalCard | BlendCard, run_dir: Path) -> str:
    """The manifest a run was trained from, checked to exist."""
    path = card.manifest.path if card.manifest is not None else None
    if not path or not Path(path).is_file():
        if not path:
            raise ParameterError(f"run {run_dir} records no manifest in its model card; build one with `encore labels`")
        raise ParameterError(f"run {run_dir} was trained on manifest {path}, which is missing; rebuild it with `encore labels`")
    return str(path)


def _class_columns(model_names: list[str], manifest_names: list[str], run_dir: Path) -> np.ndarray:
    """Column order that puts the model's class probabilities in the manifest's class order."""
    if model_names == manifest_names:
        return np.arange(len(model_names))
    if sorted(model_names) != sorted(manifest_names):
        raise ParameterError(
            f"run {run_dir} predicts classes {model_names} but the manifest has {manifest_names}; "
            "evaluate on the manifest the run was trained from, or use `encore compare` across taxonomies"
        )
    return np.array([model_names.index(n) for n in manifest_names])


def _decode(
    frame: pd.DataFrame,
    predictor: SongPredictor,
    waveforms: Mapping[str, np.ndarray | None] | None,
    cache_dir: str | os.PathLike | None,
) -> dict[str, np.ndarray | None]:
    """``waveforms`` and the frame's other songs, decoded at the predictor's rate (failures are left out as None)."""
    cache = FeatureCache(cache_dir) if cache_dir else None
    return decode_songs(frame, sample_rate=predictor.sample_rate, cache=cache, decoded=waveforms)[0]


def _calibration(
    predictor: SongPredictor, songs: list[np.ndarray], classes: np.ndarray, served: np.ndarray, columns: np.ndarray
) -> dict[str, Any] | None:
    """ECE of the CNN's raw probabilities (T = 1) and of the served ones (the card's T)."""
    if not isinstance(predictor, Predictor):
        return None
    calibration = predictor.card.calibration
    known = classes >= 0
    if known.sum() == 0:
        return None
    if np.isclose(calibration.temperature, 1.0):
        raw = served
    else:
        raw_card = predictor.card.uncalibrated()
        raw_predictor = Predictor(predictor.model, raw_card, batch_size=predictor.batch_size, runner=predictor.runner)
        raw = raw_predictor.predict_arrays(songs)["class_probs"][:, columns]
    return {
        "temperature": calibration.temperature,
        "fitted_on": calibration.fitted_on,
        "kept": calibration.kept,
        "reason": calibration.reason,
        "ece_before": expected_calibration_error(classes[known], raw[known]),
        "ece_after": (
            expected_calibration_error(classes[known], served[known])
            if calibration.method is not None and calibration.kept is not False
            else None
        ),
    }


def _global_importance(
    predictor: SongPredictor, manifest: Manifest, waveforms: Mapping[str, Any], result: dict[str, Any]
) -> None:
    """Permutation importance (forest) or mel-band importance (CNN) on the validation songs."""
    from encore.explain.importance import mel_band_importance, permutation_importance_forest

    frame = manifest.subset("val")
    frame = frame[[waveforms.get(t) is not None for t in frame["track_id"]]].reset_index(drop=True)
    if frame.empty or not predictor.label_names:
        logger.info("no decodable validation songs; global importances left out")
        return
    if isinstance(predictor, BlendPredictor):
        logger.info("a blend: global importances are in its members' reports (`encore evaluate RUN/members/NAME`)")
        return
    if _trained_on_validation(predictor):
        logger.info(
            "the classical model trained on the validation songs; permutation importance there would "
            "measure memorisation, so the report shows its training-song importances instead"
        )
        return
    songs = [waveforms[t] for t in frame["track_id"]]
    classes = manifest.class_targets(frame)
    try:
        if isinstance(predictor, Predictor):
            result["mel_band_importance"] = mel_band_importance(predictor, songs, classes)
        elif (classes >= 0).sum() >= 2:
            result["permutation_importance"] = permutation_importance_forest(predictor, songs, classes)
    except ParameterError as err:
        logger.warning("global importance left out: %s", err)


def novelty_rate(distances: np.ndarray, calibration: NoveltyCalibration | None) -> dict[str, Any] | None:
    """How many of the songs the model's novelty threshold flags, with a Wilson 95 % interval (and which: ``novel``).

    On held-out songs of the catalogue's own kind every flag is a false alarm, and the
    threshold (the validation songs' 99th percentile) expects about 1 %: a much higher
    share means the threshold was set on too few songs, or the split differs from them.
    None where the model has no fitted novelty scale.
    """
    threshold = calibration.threshold if calibration is not None and calibration.usable else None
    if calibration is None or threshold is None or not len(distances):
        return None
    flagged = np.asarray(distances, dtype=np.float64) > threshold
    return {
        **flagged_share(flagged, calibration.threshold_percentile),
        "threshold": threshold,
        "reference": calibration.reference,
        "reference_songs": calibration.reference_songs,
        "novel": flagged.tolist(),
    }


def _trained_on_validation(predictor: SongPredictor) -> bool:
    """A classical model trains on the validation songs too (its card's ``trained_on``)."""
    return isinstance(predictor.card, ClassicalCard | BlendCard) and predictor.card.trained_on_validation


def _importance_note(predictor: SongPredictor, manifest: Manifest, asked: bool, result: Mapping[str, Any]) -> str:
    """One sentence on which importances the result holds, and how to get the others."""
    names = {
        "feature_importance": "impurity importance (from training)",
        "permutation_importance": "permutation importance",
        "mel_band_importance": "mel-band importance",
    }
    if isinstance(predictor, BlendPredictor):
        return "importances: a blend has none of its own; `encore evaluate RUN/members/NAME` reports each member's"
    done = [name for key, name in names.items() if result.get(key)]
    n_val = int((manifest.frame["split"] == "val").sum())
    costly = "mel-band importance" if isinstance(predictor, Predictor) else "permutation importance"
    what = f"{', '.join(done)} included; " if done else ""
    if _trained_on_validation(predictor):
        return f"importances: {what}{costly} not measured: the model trained on the validation songs"
    if not n_val:
        return f"importances: {what}{costly} not measured: the manifest has no validation songs to measure it on"
    if asked:
        return f"importances: {', '.join(done) or 'none could be computed'} ({n_val} validation songs)"
    return f"importances: {what}{costly} on the {n_val} validation songs left out (slow); add --importance"


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    cache_dir: str | os.PathLike | None = None,
    waveforms: Mapping[str, np.ndarray | None] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    manifest_path: str | os.PathLike | None = None,
    importance: bool = False,
    device: str = "auto",
) -> dict[str, Any]:
    """Song-level metrics of one run on a split of a manifest.

    Args:
        run_dir: A CNN or random-forest run folder.
        split: ``test`` (default) or ``val``.
        cache_dir: The workspace cache for decoded audio.
        waveforms: Already-decoded songs by track id, at the run's sample rate.
        n_boot: Bootstrap resamples for the intervals.
        seed: Bootstrap seed.
        manifest_path: Evaluate on this manifest (same classes) instead of the run's own.
        importance: Also compute the costly global importances on the validation split
            (the forest's permutation importance, the CNN's mel-band occlusion). The
            forest's impurity importances, stored in its card at training, cost nothing
            and are always included.
        device: Where a CNN runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Returns:
        A result dict as :func:`encore.evaluate.report.write_report` takes it (also
        ``label_names``, ``manifest`` and ``calibration``); also written to
        ``run_dir/evaluation-<split>.json``.

    Raises:
        ParameterError: missing manifest, classes that do not match, or no decodable songs.
    """
    run_dir = Path(run_dir)
    predictor = load_predictor(run_dir, device=device)
    card = predictor.card
    own_manifest = manifest_path is None
    path = run_manifest_path(card, run_dir) if manifest_path is None else str(manifest_path)
    if not Path(path).is_file():
        raise ParameterError(f"manifest {path!r} does not exist; build one with `encore labels`")
    manifest = Manifest.read(path)
    if own_manifest and card.manifest is not None and manifest.digest() != card.manifest.digest:
        logger.warning("manifest %s changed since run %s was trained; evaluating on its current contents", path, run_dir)
    frame = manifest.subset(split)
    waveforms = _decode(frame, predictor, waveforms, cache_dir)
    frame = frame[[waveforms.get(t) is not None for t in frame["track_id"]]].reset_index(drop=True)
    if frame.empty:
        raise ParameterError(f"the {split} split of {path} has no decodable songs to evaluate")
    songs = [song for t in frame["track_id"] if (song := waveforms[t]) is not None]  # all: frame kept the decoded ones
    arrays = predictor.predict_arrays(songs)

    result: dict[str, Any] = {
        "name": run_dir.name,
        "model": card.model_name,
        "run_dir": str(run_dir),
        "manifest": path,
        "split": split,
        "label_names": list(manifest.label_names),
        "classification": None,
        "calibration": None,
        "appeal": None,
        "scores": None,
        "tags": None,
        "history": _read_history(run_dir),
        "feature_importance": None,
        "novelty": None,
    }
    predictions: dict[str, list[Any]] = {"track_id": list(frame["track_id"])}
    if "novelty_distance" in arrays:
        result["novelty"] = novelty_rate(arrays["novelty_distance"], predictor.novelty_calibration)
        if result["novelty"] is not None:
            predictions["novel"] = result["novelty"].pop("novel")
    if "class_probs" in arrays and manifest.label_names:
        columns = _class_columns(list(predictor.label_names), list(manifest.label_names), run_dir)
        probs = arrays["class_probs"][:, columns]
        classes = manifest.class_targets(frame)
        known = classes >= 0
        if known.sum():
            result["classification"] = classification_metrics(
                classes[known], probs[known], manifest.label_names, n_boot=n_boot, seed=seed
            )
            result["calibration"] = _calibration(predictor, songs, classes, probs, columns)
        predictions["y_true"] = classes.tolist()
        predictions["y_pred"] = probs.argmax(1).tolist()
        predictions["confidence"] = probs.max(1).astype(float).tolist()
    if "scores" in arrays:
        observed = manifest.regression_targets(frame)
        reliability = manifest.info.get("reliability") or {}
        scores: dict[str, Any] = {}
        for j, name in enumerate(predictor.regression_names):
            if name not in manifest.regression_names or np.isnan(observed[:, manifest.regression_names.index(name)]).all():
                continue
            truth = observed[:, manifest.regression_names.index(name)]
            scores[name] = regression_metrics(truth, arrays["scores"][:, j], n_boot=n_boot, seed=seed)
            if isinstance(reliability.get(name), Mapping):
                scores[name]["reliability"] = {k: reliability[name].get(k) for k in ("reliability", "ceiling")}
            if j == 0:
                predictions["appeal_true"] = [None if np.isnan(v) else float(v) for v in truth]
                predictions["appeal_pred"] = arrays["scores"][:, 0].astype(float).tolist()
        result["scores"] = scores or None
        result["appeal"] = scores.get("appeal", next(iter(scores.values()), None))
    if "tag_probs" in arrays and manifest.tag_names and list(predictor.tag_names) == list(manifest.tag_names):
        targets = manifest.tag_targets(frame)
        known = ~np.isnan(targets).any(axis=1)
        if known.sum() > 1:
            result["tags"] = multilabel_metrics(
                targets[known], arrays["tag_probs"][known], manifest.tag_names, threshold=TAG_THRESHOLD, seed=seed
            )
    if isinstance(card, ClassicalCard):
        ranked = card.ranked_importance("classifier")
        if ranked:
            result["feature_importance"] = [{"feature": f, "importance": float(v)} for f, v in ranked]
        if card.selections:  # the classical baseline's features kept by selection (issue 23)
            result["feature_selection"] = card.selections
    if importance:
        val_frame = manifest.subset("val")
        waveforms = _decode(val_frame, predictor, waveforms, cache_dir)
        _global_importance(predictor, manifest, waveforms, result)
    result["importance_note"] = _importance_note(predictor, manifest, importance, result)
    result["predictions"] = predictions
    (run_dir / f"evaluation-{split}.json").write_text(
        json.dumps(to_jsonable(result), indent=2, allow_nan=False), encoding="utf-8"
    )
    return result
