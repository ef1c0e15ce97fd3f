"""Should the pair probe's heads be nonlinear? Inner cross-validation on the training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_layers.py extract   # the pair's song-mean embeddings, once
    PYTHONPATH=src python experiments/emotify_probe_kernel.py [--seeds 0,1,2] [--out experiments/emotify_probe_kernel.json]

The probe's heads are linear (a softmax for the genre, soft-target logistic for the
emotions, ridge for appeal), as linear probing on frozen embeddings usually is. Benchmarks
of music embeddings (HEAR, MARBLE) also report a small nonlinear probe, and an RBF kernel
is the classic one for a few hundred songs. Three heads on the musicnn pair's song-mean
penultimate embeddings (400-d) are compared:

- ``linear``: the shipped kind of head, as the other probe studies score it
  (``emotify_probe_layers.inner_scores``: a multinomial logistic regression, C by 3 further
  folds; ``RidgeCV`` for the emotions and appeal);
- ``rbf``: the product's classical SVM (``encore.train.svm.fit_svm``, ``baseline.svm``'s
  default grids of C and kernel width, 3 further folds; an SVC with Platt-scaled
  probabilities for the genre, one SVR a standardised target);
- ``linear + rbf``: the equal-weight mean of the two (genre probabilities, predicted
  emotion shares and appeal), as ``baseline.estimator: ensemble`` votes.

For each of the 15 outer training folds (the studies' folds, 3 seeds), 5 genre-stratified
inner folds of the fold's 320 training songs score each head on the pooled inner held-out
songs. No held-out fold is read; the rule for what follows is in experiments/README.md.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, fold_splits, read_targets  # noqa: E402
from emotify_probe_layers import (  # noqa: E402
    _standardise,
    genre_and_targets,
    load_layers,
    span_coordinates,
    study_arguments,
)

logger = logging.getLogger("emotify_probe_kernel")
HEADS = ("linear", "rbf", "linear + rbf")


def _scores(y: np.ndarray, targets: np.ndarray, proba: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    rho = [spearmanr(targets[:, i], predicted[:, i])[0] for i in range(targets.shape[1])]
    return {
        "accuracy": float(np.mean(proba.argmax(1) == y)),
        "emotions_mean": float(np.mean(rho[:-1])),
        "appeal": float(rho[-1]),
        **{name: float(r) for name, r in zip([*EMOTIONS, "appeal"], rho, strict=True) if name != "appeal"},
    }


def inner_heads(x: np.ndarray, y: np.ndarray, targets: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    """Each head's inner-CV scores on these (training) songs."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import StratifiedKFold

    from encore.config import SvmConfig
    from encore.train.svm import fit_svm

    grids = SvmConfig()
    n_classes = int(y.max()) + 1
    proba = {h: np.zeros((len(y), n_classes)) for h in ("linear", "rbf")}
    predicted = {h: np.zeros_like(targets) for h in ("linear", "rbf")}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        x_train, x_test = span_coordinates(*_standardise(x[train], x[test]))
        search = LogisticRegressionCV(
            Cs=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0], cv=StratifiedKFold(3, shuffle=True, random_state=seed), max_iter=2000
        )
        proba["linear"][test] = search.fit(x_train, y[train]).predict_proba(x_test)
        predicted["linear"][test] = RidgeCV(alphas=np.logspace(-1, 5, 13)).fit(x_train, targets[train]).predict(x_test)
        common = {"c_grid": grids.c_grid, "gamma_scales": grids.gamma_scales, "n_folds": 3, "seed": seed, "n_jobs": -1}
        svc, _ = fit_svm(x[train], y[train], classification=True, **common)
        proba["rbf"][test] = svc.predict_proba(x[test])
        svr, _ = fit_svm(x[train], targets[train], classification=False, **common)
        predicted["rbf"][test] = svr.predict(x[test])
    proba["linear + rbf"] = (proba["linear"] + proba["rbf"]) / 2
    predicted["linear + rbf"] = (predicted["linear"] + predicted["rbf"]) / 2
    return {h: _scores(y, targets, proba[h], predicted[h]) for h in HEADS}


def main() -> None:
    args = study_arguments(__doc__.splitlines()[0], "emotify_probe_kernel.json")
    songs, _ = read_targets(args.data)
    layers = load_layers(songs)
    if ("msd", "penultimate") not in layers or ("mtt", "penultimate") not in layers:
        raise SystemExit("run `experiments/emotify_probe_layers.py extract` first (both musicnn taggers)")
    x = np.concatenate([layers[("msd", "penultimate")], layers[("mtt", "penultimate")]], axis=1)
    y, targets = genre_and_targets(songs)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            for head, scores in inner_heads(x[train], y[train], targets[train], seed).items():
                rows.append({"seed": seed, "fold": fold, "head": head, **scores})
                logger.info(
                    "seed %d fold %d %-13s %s",
                    seed,
                    fold,
                    head,
                    {k: round(scores[k], 3) for k in ("accuracy", "emotions_mean", "appeal")},
                )
    summary = {}
    base = [r for r in rows if r["head"] == "linear"]
    keys = ("accuracy", "emotions_mean", "appeal", *EMOTIONS)
    for head in HEADS:
        mine = [r for r in rows if r["head"] == head]
        summary[head] = {k: float(np.mean([r[k] for r in mine])) for k in keys}
        for key in ("accuracy", "emotions_mean", "appeal"):
            summary[head][f"{key}_folds_ahead"] = int(sum(m[key] > b[key] for m, b in zip(mine, base, strict=True)))
    print(
        f"| head (inner-CV means of {len(base)} training folds) | genre | emotions' mean | appeal | folds ahead of linear (genre, emotions, appeal) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for head, s in summary.items():
        print(
            f"| {head} | {s['accuracy']:.3f} | {s['emotions_mean']:.3f} | {s['appeal']:.3f} | "
            f"{s['accuracy_folds_ahead']}, {s['emotions_mean_folds_ahead']}, {s['appeal_folds_ahead']} |"
        )
    report = {"command": "python " + " ".join(sys.argv), "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
