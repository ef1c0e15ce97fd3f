"""Would the classical models classify Emotify's genres better from 10-s segments than from whole songs? (issue 23)

Usage:
    PYTHONPATH=src python experiments/emotify_segments.py [--seeds 0,1,2] [--inner 5] [--out F]

The shipped classical models summarise a song's frames once (145 features a song) and
train on 320 rows a fold. Here each song is also cut into non-overlapping 10-s segments
(the last kept if at least 5 s long), each segment summarised by the same handcrafted
features; a model trains on every segment of the training songs with its song's class
and targets, and a song's prediction is the mean of its segments' class probabilities and
predictions. More, noisier rows for models that see few: a "bag of segments", where a
song-level summary is one row.

Only inner folds of the studies' training folds are scored (``emotify_classical``'s
``--inner`` design, its folds and seeds): for each of the 15 outer training folds, 5
genre-stratified inner folds of its 320 songs; the outer held-out songs are never read.
Candidates, each at song level (``song_*``, the shipped settings) and segment level
(``seg_*``): the forest (``configs/emotify_cv.yaml``'s 500 trees) for the class, the nine
emotions and appeal; the SVM's class head (the shipped C and width grids, chosen on 3 inner
folds of the training rows, songs grouped so that no song's segments straddle a split,
Platt-scaled on the same grouped folds); and the vote of the two class heads (the mean of
their probabilities, as ``baseline.estimator: ensemble``). The rule is in
experiments/README.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import functools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from encore.config import load_config
from encore.data.waveforms import load_waveforms
from encore.features.cache import FeatureCache
from encore.features.extract import compute_feature_matrix
from encore.inference.baseline import song_means
from encore.train.baseline import _forest
from encore.train.svm import _features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_classical import baseline_config, study_parser  # noqa: E402
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402

logger = logging.getLogger("emotify_segments")
SEGMENT_S, MIN_LAST_S = 10.0, 5.0


def segment_features(songs, config, cache: FeatureCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Song-level features ``(400, d)``, segment features ``(n_segments, d)`` and each segment's song index."""
    sr, bc = config.features.sample_rate, config.baseline
    decoded, failures = load_waveforms(list(songs["path"]), sample_rate=sr, cache=cache)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    spec = {"sample_rate": sr, "n_fft": bc.n_fft, "hop_length": bc.hop_length, "cache": cache}
    whole = compute_feature_matrix(decoded, **spec)
    length, shortest = int(SEGMENT_S * sr), int(MIN_LAST_S * sr)
    pieces, owner = [], []
    for i, waveform in enumerate(decoded):
        for start in range(0, max(len(waveform), 1), length):
            piece = waveform[start : start + length]
            if len(piece) >= shortest or start == 0:
                pieces.append(piece)
                owner.append(i)
    t0 = time.perf_counter()
    segments = compute_feature_matrix(pieces, **spec)
    logger.info("%d segments of %d songs in %.0f s", len(pieces), len(decoded), time.perf_counter() - t0)
    return whole, segments, np.array(owner)


def svm_class(X: np.ndarray, y: np.ndarray, groups: np.ndarray, c_grid, gamma_scales, seed: int):
    """The shipped SVM class head, its inner folds grouped by song (each song a group at song level)."""
    folds = list(StratifiedGroupKFold(3, shuffle=True, random_state=seed).split(X, y, groups))
    grid = {"svc__C": list(c_grid), "svc__gamma": [s / X.shape[1] for s in gamma_scales]}
    search = GridSearchCV(make_pipeline(*_features(), SVC(class_weight="balanced", random_state=seed)), grid, cv=folds)
    search.fit(X, y)
    best = search.best_params_
    svm = SVC(C=best["svc__C"], gamma=best["svc__gamma"], class_weight="balanced", random_state=seed)
    model = make_pipeline(*_features(), CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False))
    return model.fit(X, y)


def fit_predict(X, owner, classes, targets, train_songs, test_songs, bc, svm_config) -> dict[str, dict[str, np.ndarray]]:
    """The forest and the SVM class head on the rows of ``train_songs``, song means over the rows of ``test_songs``."""
    rows_train, rows_test = np.isin(owner, train_songs), np.isin(owner, test_songs)
    order = np.searchsorted(test_songs, owner[rows_test])  # test_songs is sorted
    per_song = functools.partial(song_means, owner=order, n_songs=len(test_songs))

    y = classes[owner[rows_train]]
    forest_c = _forest(bc, True).fit(X[rows_train], y)
    forest_r = _forest(bc, False).fit(X[rows_train], targets[owner[rows_train]])
    svm = svm_class(X[rows_train], y, owner[rows_train], svm_config.c_grid, svm_config.gamma_scales, bc.seed)
    forest = {"class_probs": per_song(forest_c.predict_proba(X[rows_test])), "targets": per_song(forest_r.predict(X[rows_test]))}
    svm_probs = per_song(svm.predict_proba(X[rows_test]))
    return {
        "forest": forest,
        "svm": {"class_probs": svm_probs},
        "vote": {"class_probs": (forest["class_probs"] + svm_probs) / 2},
    }


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_segments_inner.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = load_config(args.config, [])
    songs, _ = read_targets(args.data)
    whole, segments, owner = segment_features(songs, config, FeatureCache(args.cache))
    classes = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    names = [*EMOTIONS, "appeal"]
    targets = songs[names].to_numpy(float)
    levels = {"song": (whole, np.arange(len(songs))), "seg": (segments, owner)}
    per_fold: dict[str, list[dict]] = {f"{level}_{m}": [] for level in levels for m in ("forest", "svm", "vote")}
    for seed in (int(s) for s in args.seeds.split(",")):
        bc = baseline_config(config, {"seed": seed}, 2)
        for k, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            pooled: dict[str, dict[str, np.ndarray]] = {}
            t0 = time.perf_counter()
            for inner_train, inner_test in StratifiedKFold(args.inner, shuffle=True, random_state=seed).split(
                train, classes[train]
            ):
                test_songs = np.sort(train[inner_test])
                for level, (X, rows_owner) in levels.items():
                    out = fit_predict(X, rows_owner, classes, targets, train[inner_train], test_songs, bc, bc.svm)
                    for model, arrays in out.items():
                        for key, value in arrays.items():
                            pooled.setdefault(f"{level}_{model}", {}).setdefault(key, np.zeros((len(songs), value.shape[1])))[
                                test_songs
                            ] = value
            for name, arrays in pooled.items():
                row = {
                    "seed": seed,
                    "fold": k,
                    "accuracy": float((arrays["class_probs"][train].argmax(1) == classes[train]).mean()),
                }
                if "targets" in arrays:
                    for j, t in enumerate(names):
                        row[t] = float(spearmanr(arrays["targets"][train, j], targets[train, j]).statistic)
                    row["emotions_mean"] = float(np.mean([row[e] for e in EMOTIONS]))
                per_fold[name].append(row)
            logger.info(
                "seed %d fold %d (%.0f s): %s",
                seed,
                k,
                time.perf_counter() - t0,
                ", ".join(f"{n} {rows[-1]['accuracy']:.3f}" for n, rows in per_fold.items()),
            )
        mean = {
            n: {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key not in ("seed", "fold")}
            for n, rows in per_fold.items()
        }
        ahead = {
            f"seg_{m} - song_{m}": {
                key: {
                    "mean": float(
                        np.mean([a[key] - b[key] for a, b in zip(per_fold[f"seg_{m}"], per_fold[f"song_{m}"], strict=True)])
                    ),
                    "folds_ahead": int(
                        sum(a[key] > b[key] for a, b in zip(per_fold[f"seg_{m}"], per_fold[f"song_{m}"], strict=True))
                    ),
                }
                for key in mean[f"seg_{m}"]
            }
            for m in ("forest", "svm", "vote")
        }
        report = {
            "command": "python " + " ".join(sys.argv),
            "n_segments": int(len(owner)),
            "mean": mean,
            "ahead": ahead,
            "per_fold": per_fold,
        }
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        lines = [f"after seed {seed} ({len(per_fold['seg_vote'])} outer training folds):"]
        lines += [
            f"{n}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items() if k in ("accuracy", "emotions_mean", "appeal"))
            for n, m in mean.items()
        ]
        lines += [
            f"{pair}: "
            + ", ".join(
                f"{k} {d['mean']:+.3f} ({d['folds_ahead']} ahead)"
                for k, d in diff.items()
                if k in ("accuracy", "emotions_mean", "appeal")
            )
            for pair, diff in ahead.items()
        ]
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
