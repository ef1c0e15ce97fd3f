"""One L2 strength for all of the probe's tags, or one per tag? Inner cross-validation on the training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_strengths.py [--seeds 0,1,2]
        [--out experiments/emotify_probe_strengths.json]

The probe's tag head (``encore.train.refit``: a soft-target logistic model on the
standardised song embeddings) chooses one L2 strength for every tag by 5-fold
cross-validation of the summed cross-entropy. Emotions differ in how much the embedding
knows of them (amazement's Spearman is half of joyful activation's), so one strength per
tag, each by its own cross-entropy over the same folds, might fit each better. The tags'
columns are independent given the strength, so both choices come from the same fits.

Never looks at a held-out fold: for each seed and each of the 5 outer folds of the
studies (``emotify_history.fold_splits``), 5 inner folds of the fold's *training* songs
score both choices on the pair's embeddings (msd + mtt penultimate, from
``emotify_probe_layers.py extract``), with the product's own ``fit_soft_logistic`` and
``STRENGTHS``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402
from emotify_probe_layers import CANDIDATES, _standardise, load_layers, span_coordinates  # noqa: E402

from encore.train.refit import STRENGTHS, fit_soft_logistic  # noqa: E402

logger = logging.getLogger("emotify_probe_strengths")


def _column_bce(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return (np.logaddexp(0.0, logits) - targets * logits).sum(0)


def predict_both(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Test logits with one strength for all tags (``shared``) and one per tag (``per_tag``)."""
    order = np.random.default_rng(seed).permutation(len(x_train))
    losses = np.zeros((len(STRENGTHS), y_train.shape[1]))
    for held in np.array_split(order, 5):
        keep = np.setdiff1d(order, held)
        a, b = span_coordinates(x_train[keep], x_train[held])
        for i, strength in enumerate(STRENGTHS):
            weight, bias = fit_soft_logistic(a, y_train[keep], strength)
            losses[i] += _column_bce(b @ weight + bias, y_train[held])
    shared = int(np.argmin(losses.sum(1)))
    per_tag = np.argmin(losses, axis=0)
    a, b = span_coordinates(x_train, x_test)
    fits = {i: fit_soft_logistic(a, y_train, STRENGTHS[i]) for i in {shared, *per_tag.tolist()}}
    logits = {i: b @ w + c for i, (w, c) in fits.items()}
    return {
        "shared": logits[shared],
        "per_tag": np.stack([logits[i][:, j] for j, i in enumerate(per_tag)], axis=1),
        "chosen": {"shared": STRENGTHS[shared], "per_tag": [STRENGTHS[i] for i in per_tag]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_probe_strengths.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    songs, _ = read_targets(args.data)
    layers = load_layers(songs)
    x_all = np.concatenate([layers[p] for p in CANDIDATES["pair penultimate (shipped)"]], axis=1)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    shares = songs[EMOTIONS].to_numpy(float)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            predicted = {"shared": np.zeros((len(train), len(EMOTIONS))), "per_tag": np.zeros((len(train), len(EMOTIONS)))}
            for inner_train, inner_test in StratifiedKFold(5, shuffle=True, random_state=seed).split(train, y[train]):
                x_train, x_test = _standardise(x_all[train][inner_train], x_all[train][inner_test])
                out = predict_both(x_train, shares[train][inner_train], x_test, seed)
                for key in predicted:
                    predicted[key][inner_test] = out[key]
            row: dict = {"seed": seed, "fold": fold, "per_tag_strengths_last_inner_fold": out["chosen"]["per_tag"]}
            for key, values in predicted.items():
                rho = [spearmanr(shares[train][:, j], values[:, j])[0] for j in range(len(EMOTIONS))]
                row[key] = {"emotions_mean": float(np.mean(rho)), **dict(zip(EMOTIONS, map(float, rho), strict=True))}
            rows.append(row)
            logger.info(
                "seed %d fold %d: shared %.4f, per tag %.4f",
                seed,
                fold,
                row["shared"]["emotions_mean"],
                row["per_tag"]["emotions_mean"],
            )
    summary = {
        key: {k: float(np.mean([r[key][k] for r in rows])) for k in ["emotions_mean", *EMOTIONS]} for key in ("shared", "per_tag")
    }
    ahead = sum(r["per_tag"]["emotions_mean"] > r["shared"]["emotions_mean"] for r in rows)
    print("| strength | emotions' mean | " + " | ".join(EMOTIONS) + " |")
    print("| --- " * (len(EMOTIONS) + 2) + "|")
    for key, s in summary.items():
        print(f"| {key} | {s['emotions_mean']:.4f} | " + " | ".join(f"{s[e]:.3f}" for e in EMOTIONS) + " |")
    print(f"per tag ahead of shared in {ahead} of {len(rows)} training folds")
    report = {"command": "python " + " ".join(sys.argv), "summary": summary, "per_tag_ahead": ahead, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
