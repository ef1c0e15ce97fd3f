"""The probe on a song's mean and spread (or maximum) of its patch embeddings, not its mean alone: inner cross-validation on the training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_segments.py extract     # the patch embeddings, once
    PYTHONPATH=src python experiments/emotify_probe_pooling.py inner [--seeds 0,1,2]
        [--out experiments/emotify_probe_pooling_inner.json]
    POOLING_CANDIDATE=meanstd PYTHONPATH=src python experiments/emotify_probe_pooling.py heldout
        [--out experiments/emotify_probe_pooling_heldout.json]

The product's probe summarises a song by the mean of its 3-s patch embeddings (musicnn-msd
and musicnn-mtt side by side, 400-d). Summarising frame or patch embeddings by their mean
*and* standard deviation is the usual alternative in music classification on pretrained
embeddings (and the mean and spread of each band is how the handcrafted features
summarise a song): a song whose patches disagree (a quiet intro, a loud chorus) is not
the same as one that stays put. Candidates: ``song`` (the mean, the shipped probe),
``meanstd`` (mean and standard deviation over the song's patches, 800-d) and ``meanmax``
(mean and maximum, 800-d). Each head is fitted as ``emotify_probe_segments.py`` fits
``song``'s (one row a song, standardised; the genre by the product's softmax, the
emotions and the appeal by ridge in the inner folds, every L2 strength from the
product's grid by 3 further folds of the training songs).

``inner`` never looks at a held-out fold: for each seed and each of the 5 outer folds of
the earlier studies (``emotify_history.fold_splits``), 5 genre-stratified inner folds of
the fold's *training* songs score each candidate.

``heldout`` (only once the pre-registered rule in experiments/README.md has kept a
candidate, named by ``POOLING_CANDIDATE``) fits the product's heads exactly (the emotions
by its soft logistic, every strength by 5 folds of the training songs) on each outer
fold's 320 training songs, predicts the 80 held-out songs, and pairs the candidate with
``song`` over the 3 seeds (bootstrap over songs).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, fold_splits, read_targets  # noqa: E402
from emotify_probe_layers import genre_and_targets, study_arguments  # noqa: E402
from emotify_probe_segments import _scores, fit_heads, load_patches, predict  # noqa: E402

logger = logging.getLogger("emotify_probe_pooling")
POOLINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "song": lambda p: p.mean(0),
    "meanstd": lambda p: np.concatenate([p.mean(0), p.std(0)]),
    "meanmax": lambda p: np.concatenate([p.mean(0), p.max(0)]),
}
"""A song's summary of its ``(n_patches, 400)`` patch embeddings."""


class SongRows:
    """One row a song (its pooled summary), as ``fit_heads`` reads a candidate's rows."""

    def __init__(self, features: np.ndarray, songs: np.ndarray) -> None:
        self.x = features[songs]
        self.song = np.arange(len(songs))
        self.means = self.x


def inner_scores(features, songs_idx, y, targets, seed, n_inner: int) -> tuple[dict[str, float], list[dict]]:
    from sklearn.model_selection import StratifiedKFold

    out = {
        "class_probs": np.zeros((len(songs_idx), int(y.max()) + 1)),
        "emotions": np.zeros((len(songs_idx), len(EMOTIONS))),
        "appeal": np.zeros(len(songs_idx)),
    }
    chosen = []
    for train, test in StratifiedKFold(n_inner, shuffle=True, random_state=seed).split(songs_idx, y[songs_idx]):
        t = targets[songs_idx[train]]
        fitted = fit_heads(
            SongRows(features, songs_idx[train]), y[songs_idx[train]], t[:, :-1], t[:, -1], n_folds=3, seed=seed, exact=False
        )
        for key, value in predict(fitted, features[songs_idx[test]]).items():
            out[key][test] = value
        chosen.append(fitted["strengths"])
    return _scores(y[songs_idx], targets[songs_idx], out), chosen


def inner(songs, seeds: list[int], out: Path, n_inner: int) -> None:
    patches = load_patches(songs)
    features = {name: np.stack([pool(p) for p in patches]) for name, pool in POOLINGS.items()}
    y, targets = genre_and_targets(songs)
    rows = []
    for seed in seeds:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            for name in POOLINGS:
                start = time.perf_counter()
                scores, chosen = inner_scores(features[name], train, y, targets, seed, n_inner)
                rows.append({"seed": seed, "fold": fold, "candidate": name, **scores, "chosen": chosen})
                logger.info(
                    "seed %d fold %d %-8s %s (%.0f s)",
                    seed,
                    fold,
                    name,
                    {k: round(v, 3) for k, v in scores.items()},
                    time.perf_counter() - start,
                )
    summary = {}
    base = [r for r in rows if r["candidate"] == "song"]
    keys = ("accuracy", "emotions_mean", "appeal")
    for name in POOLINGS:
        mine = [r for r in rows if r["candidate"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in mine])) for k in keys}
        for k in keys:
            summary[name][f"{k}_ahead_of_song"] = int(sum(m[k] > b[k] for m, b in zip(mine, base, strict=True)))
            summary[name][f"{k}_behind_song"] = int(sum(m[k] < b[k] for m, b in zip(mine, base, strict=True)))
    print(f"| candidate | genre | emotions' mean | appeal | folds ahead of song (genre, emotions, appeal) of {len(base)} |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in summary.items():
        ahead = ", ".join(str(s[f"{k}_ahead_of_song"]) for k in keys)
        print(f"| {name} | {s['accuracy']:.3f} | {s['emotions_mean']:.3f} | {s['appeal']:.3f} | {ahead} |")
    report = {"command": "python " + " ".join(sys.argv), "summary": summary, "rows": rows}
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")


def heldout(songs, seeds: list[int], out: Path, candidate: str) -> None:
    """The kept candidate and ``song`` on the outer folds, the product's heads (5 song folds for the strengths), paired."""
    from emotify_probe_targets import paired, run_seeds

    patches = load_patches(songs)
    y, targets = genre_and_targets(songs)

    def fold_fit(pool):
        features = np.stack([pool(p) for p in patches])

        def fit(_patches, _songs, y, train, test, seed):
            fitted = fit_heads(
                SongRows(features, train), y[train], targets[train, :-1], targets[train, -1], n_folds=5, seed=seed, exact=True
            )
            predicted = predict(fitted, features[test])
            return {
                "classes": predicted["class_probs"].argmax(1),
                "emotions": predicted["emotions"],
                "appeal": predicted["appeal"],
                "strengths": fitted["strengths"],
            }

        return fit

    results = {name: run_seeds(songs, y, patches, seeds, fold_fit(POOLINGS[name])) for name in ("song", candidate)}
    for name, result in results.items():
        logger.info("%s: %s", name, result["summary"])
    report = {
        "command": "python " + " ".join(sys.argv),
        **{name: {k: v for k, v in r.items() if k not in ("classes", "scores")} for name, r in results.items()},
        f"{candidate}_minus_song": paired(songs, y, results[candidate], results["song"]),
    }
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "command"}, indent=1)[:4000])


def main() -> None:
    steps = ("inner", "heldout")
    step = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in steps else None
    if step is None:
        raise SystemExit("usage: emotify_probe_pooling.py {inner,heldout} [--data DIR] [--seeds 0,1,2] [--out FILE]")
    candidate = os.environ.get("POOLING_CANDIDATE", "")
    args = study_arguments(__doc__.splitlines()[0], f"emotify_probe_pooling_{step}.json")
    songs, _ = read_targets(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    if step == "inner":
        inner(songs, seeds, args.out, int(os.environ.get("INNER_FOLDS", "5")))
    else:
        if candidate not in POOLINGS or candidate == "song":
            raise SystemExit("heldout: set POOLING_CANDIDATE to the candidate the inner folds kept (meanstd or meanmax)")
        heldout(songs, seeds, args.out, candidate)


if __name__ == "__main__":
    main()
