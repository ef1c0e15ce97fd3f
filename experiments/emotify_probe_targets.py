"""The frozen musicnn-msd probe on every Emotify target: genre, the nine emotions, appeal (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_targets.py [--data ../shared/data/emotify]
        [--model pretrained:musicnn-msd[,pretrained:musicnn-mtt]] [--against MODEL[,MODEL]]
        [--seeds 0,1,2] [--out experiments/emotify_probe_targets.json]

``--model`` with several published models puts them side by side, as ``encore train
--init-from A --init-from B --freeze-backbone`` does: the song's embedding is theirs
concatenated (the two-member model's ``forward_features`` is exactly that, which
``tests/models/test_pretrained_use.py`` checks), each model's cached on its own.
``--against`` runs a second probe on the same folds and seeds and adds paired bootstrap
intervals (over songs, seed-averaged) of ``--model`` minus it.

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
from scipy.special import softmax
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_classical import TARGETS, _spearman_rows, paired_over_seeds  # noqa: E402
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402
from emotify_learning_curve import embed  # noqa: E402

from encore.train.refit import _bce, _choose_strength, _mse, fit_ridge, fit_soft_logistic  # noqa: E402
from encore.train.transfer import _softmax_strength, fit_softmax  # noqa: E402

logger = logging.getLogger("emotify_probe_targets")


def probe_fold(embeddings: np.ndarray, songs, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """The probe's three heads fitted on ``train``: class indices and probabilities, emotion shares and appeal of ``test``."""
    center, scale = embeddings[train].mean(0), embeddings[train].std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    x_train, x_test = (embeddings[train] - center) / scale, (embeddings[test] - center) / scale
    n_classes = len(GENRE_OFFSETS)
    strength, _ = _softmax_strength(x_train, y[train], n_classes, n_folds=5, seed=seed)
    weight, bias = fit_softmax(x_train, y[train], strength, n_classes)
    logits = x_test @ weight + bias
    classes = np.argmax(logits, axis=1)
    class_probs = softmax(logits, axis=1)
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
        "class_probs": class_probs,
        "emotions": emotions,
        "appeal": (x_test @ a_weight + a_bias)[:, 0] * spread[0] + shift[0],
        "strengths": {"class": strength, "emotions": e_strength, "appeal": a_strength},
    }


def embed_side_by_side(songs, models: str) -> np.ndarray:
    """Each song's embedding under every model in the comma-separated ``models``, side by side."""
    return np.concatenate([embed(songs, name) for name in models.split(",")], axis=1)


def run_seeds(songs, y: np.ndarray, embeddings, seeds: list[int], fold_fit=None) -> dict:
    """The probe on every seed's 5 folds: pooled class indices and scores per seed, rows, strengths, times.

    ``fold_fit(embeddings, songs, y, train, test, seed)`` fits a fold and predicts its
    test songs (``classes``, ``emotions``, ``appeal``, ``strengths``): :func:`probe_fold` by default.
    """
    fold_fit = fold_fit or probe_fold
    per_seed, strengths, seconds, classes_all, scores_all = [], [], [], [], []
    for seed in seeds:
        classes = np.zeros(len(songs), dtype=int)
        scores = np.zeros((len(songs), len(TARGETS)))
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            start = time.perf_counter()
            out = fold_fit(embeddings, songs, y, train, test, seed)
            seconds.append(time.perf_counter() - start)
            classes[test] = out["classes"]
            scores[test, : len(EMOTIONS)] = out["emotions"]
            scores[test, len(EMOTIONS)] = out["appeal"]
            strengths.append({"seed": seed, "fold": fold, **out["strengths"]})
            logger.info("seed %d fold %d: accuracy %.3f (%.0f s)", seed, fold, np.mean(out["classes"] == y[test]), seconds[-1])
        row = {"seed": seed, "accuracy": float(np.mean(classes == y))}
        row.update({t: float(spearmanr(scores[:, i], songs[t]).statistic) for i, t in enumerate(TARGETS)})
        row["emotions_mean"] = float(np.mean([row[e] for e in EMOTIONS]))
        per_seed.append(row)
        classes_all.append(classes)
        scores_all.append(scores)
    summary = {
        key: {"mean": float(np.mean([r[key] for r in per_seed])), "sd": float(np.std([r[key] for r in per_seed]))}
        for key in ["accuracy", *TARGETS, "emotions_mean"]
    }
    return {
        "per_seed": per_seed,
        "summary": summary,
        "strengths": strengths,
        "fit_seconds_per_fold": {"mean": float(np.mean(seconds)), "max": float(np.max(seconds))},
        "classes": np.stack(classes_all),
        "scores": np.stack(scores_all),
    }


def paired(songs, y: np.ndarray, a: dict, b: dict, *, n_boot: int = 1000) -> dict:
    """Paired bootstrap over songs of the seed-averaged difference a - b, per target and for the emotions' mean."""
    truth = songs[TARGETS].to_numpy(float)
    out = {"accuracy": paired_over_seeds(y, a["classes"], b["classes"], "accuracy", n_boot=n_boot)}
    for i, t in enumerate(TARGETS):
        out[t] = paired_over_seeds(truth[:, i], a["scores"][:, :, i], b["scores"][:, :, i], "spearman", n_boot=n_boot)
    rng = np.random.default_rng(0)
    n_emotions = len(EMOTIONS)

    def emotions_mean(idx: np.ndarray) -> float:
        diffs = []
        for i in range(n_emotions):
            t = np.broadcast_to(truth[idx, i], a["scores"][:, idx, i].shape)
            diffs.append(_spearman_rows(t, a["scores"][:, idx, i]).mean() - _spearman_rows(t, b["scores"][:, idx, i]).mean())
        return float(np.mean(diffs))

    boots = np.array([emotions_mean(rng.integers(0, len(y), len(y))) for _ in range(n_boot)])
    low, high = np.percentile(boots, [2.5, 97.5])
    out["emotions_mean"] = {"difference": emotions_mean(np.arange(len(y))), "ci_low": float(low), "ci_high": float(high)}
    return out


def _table(name: str, result: dict) -> str:
    lines = [f"| target | {name} (mean of seeds ± sd) | per seed |", "| --- | --- | --- |"]
    for key in ["accuracy", *TARGETS, "emotions_mean"]:
        values = [r[key] for r in result["per_seed"]]
        summary = result["summary"][key]
        lines.append(f"| {key} | {summary['mean']:.3f} ± {summary['sd']:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    seconds = result["fit_seconds_per_fold"]
    lines.append(f"probe fit: {seconds['mean']:.1f} s a fold (max {seconds['max']:.1f})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--model", default="pretrained:musicnn-msd", help="one model, or several side by side (comma)")
    parser.add_argument("--against", default=None, help="a second probe on the same folds, for paired intervals")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_probe_targets.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    songs, _ = read_targets(args.data)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    seeds = [int(s) for s in args.seeds.split(",")]
    result = run_seeds(songs, y, embed_side_by_side(songs, args.model), seeds)
    report = {"command": "python " + " ".join(sys.argv), "model": args.model}
    report.update({k: v for k, v in result.items() if k not in ("classes", "scores")})
    print(_table(args.model, result))
    if args.against:
        against = run_seeds(songs, y, embed_side_by_side(songs, args.against), seeds)
        report["against"] = {"model": args.against, **{k: v for k, v in against.items() if k not in ("classes", "scores")}}
        report["paired"] = paired(songs, y, result, against)
        print(_table(args.against, against))
        print(f"\n{args.model} minus {args.against} (paired bootstrap over songs, seed-averaged, 95 %):")
        for key, d in report["paired"].items():
            print(f"  {key}: {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
