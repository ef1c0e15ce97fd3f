"""The frozen musicnn-msd probe on every Emotify target: genre, the nine emotions, appeal (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_targets.py [--data ../shared/data/emotify]
        [--seeds 0,1,2] [--out experiments/emotify_probe_targets.json]

The folds are the classical and CNN studies' (``emotify_history.fold_splits`` with no
validation share: 5 genre-stratified folds, ``random_state`` = the seed), so the figures
sit beside ``emotify_classical.json``'s forest on the same songs. Each song's mean
musicnn-msd embedding (encore's port; ``encore pretrained convert musicnn-msd`` first;
cached under ``~/.cache/encore/embeddings``) is standardised on the fold's training songs,
then the probe's heads as ``encore train --init-from pretrained:musicnn-msd
--freeze-backbone`` fits them: a softmax for the genre, a soft-target logistic model for the
nine emotions' vote shares, ridge for the standardised appeal; each L2 strength is chosen
by 5-fold cross-validation inside the fold's training songs. The held-out fold is only
predicted. Predictions are pooled over each seed's 5 folds and scored on the 400 songs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_classical import TARGETS  # noqa: E402
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402
from emotify_learning_curve import embed  # noqa: E402

from encore.train.refit import _bce, _choose_strength, _mse, fit_ridge, fit_soft_logistic  # noqa: E402
from encore.train.transfer import _softmax_strength, fit_softmax  # noqa: E402

logger = logging.getLogger("emotify_probe_targets")


def probe_fold(embeddings: np.ndarray, songs, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """The probe's three heads fitted on ``train``: class indices, emotion shares and appeal of ``test``."""
    center, scale = embeddings[train].mean(0), embeddings[train].std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    x_train, x_test = (embeddings[train] - center) / scale, (embeddings[test] - center) / scale
    n_classes = len(GENRE_OFFSETS)
    strength, _ = _softmax_strength(x_train, y[train], n_classes, n_folds=5, seed=seed)
    weight, bias = fit_softmax(x_train, y[train], strength, n_classes)
    classes = np.argmax(x_test @ weight + bias, axis=1)
    shares = songs[EMOTIONS].to_numpy(float)
    e_strength, _ = _choose_strength(fit_soft_logistic, _bce, x_train, shares[train], n_folds=5, seed=seed)
    e_weight, e_bias = fit_soft_logistic(x_train, shares[train], e_strength)
    emotions = 1.0 / (1.0 + np.exp(-(x_test @ e_weight + e_bias)))
    appeal = songs[["appeal"]].to_numpy(float)
    shift, spread = appeal[train].mean(0), appeal[train].std(0)
    a_strength, _ = _choose_strength(fit_ridge, _mse, x_train, (appeal[train] - shift) / spread, n_folds=5, seed=seed)
    a_weight, a_bias = fit_ridge(x_train, (appeal[train] - shift) / spread, a_strength)
    return {
        "classes": classes,
        "emotions": emotions,
        "appeal": (x_test @ a_weight + a_bias)[:, 0] * spread[0] + shift[0],
        "strengths": {"class": strength, "emotions": e_strength, "appeal": a_strength},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--model", default="pretrained:musicnn-msd")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_probe_targets.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    songs, _ = read_targets(args.data)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    embeddings = embed(songs, args.model)
    per_seed, strengths, seconds = [], [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        classes = np.zeros(len(songs), dtype=int)
        scores = np.zeros((len(songs), len(TARGETS)))
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            start = time.perf_counter()
            out = probe_fold(embeddings, songs, y, train, test, seed)
            seconds.append(time.perf_counter() - start)
            classes[test] = out["classes"]
            scores[test, : len(EMOTIONS)] = out["emotions"]
            scores[test, len(EMOTIONS)] = out["appeal"]
            strengths.append({"seed": seed, "fold": fold, **out["strengths"]})
            logger.info("seed %d fold %d: accuracy %.3f (%.0f s)", seed, fold, np.mean(out["classes"] == y[test]), seconds[-1])
        row = {"seed": seed, "accuracy": float(np.mean(classes == y))}
        row.update({t: float(spearmanr(scores[:, i], songs[t]).statistic) for i, t in enumerate(TARGETS)})
        per_seed.append(row)
    summary = {
        key: {"mean": float(np.mean([r[key] for r in per_seed])), "sd": float(np.std([r[key] for r in per_seed]))}
        for key in ["accuracy", *TARGETS]
    }
    summary["emotions_mean"] = {
        "mean": float(np.mean([np.mean([r[e] for e in EMOTIONS]) for r in per_seed])),
        "sd": float(np.std([np.mean([r[e] for e in EMOTIONS]) for r in per_seed])),
    }
    report = {
        "command": "python " + " ".join(sys.argv),
        "per_seed": per_seed,
        "summary": summary,
        "strengths": strengths,
        "fit_seconds_per_fold": {"mean": float(np.mean(seconds)), "max": float(np.max(seconds))},
    }
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print("| target | probe (mean of seeds ± sd) | per seed |\n| --- | --- | --- |")
    for key in ["accuracy", *TARGETS, "emotions_mean"]:
        values = [r[key] for r in per_seed] if key != "emotions_mean" else [np.mean([r[e] for e in EMOTIONS]) for r in per_seed]
        print(f"| {key} | {summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    print(f"probe fit: {np.mean(seconds):.1f} s a fold (max {np.max(seconds):.1f})")


if __name__ == "__main__":
    main()
