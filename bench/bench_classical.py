"""Training time of a classical fold on Emotify: songs or 10-s segments, the SVM's grid in series or in parallel.

Usage:
    PYTHONPATH=src python bench/bench_classical.py [--data ../shared/data/emotify] [--cache /tmp/encore-classical-cache]

Fits the three heads (genre, the nine emotions' shares, appeal) of a classical model on
the 320 training songs of the studies' first fold (seed 0), as ``encore train`` does with
the features cached (``experiments/emotify_classical.py --extract-only`` fills the cache;
the first run here computes what is missing). Nothing is predicted or scored. The
reference is the song-level vote (``--model ensemble``) with the SVM's grid points fitted
one after another; every other row is a ratio of wall time against it, in this process.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))
from emotify_classical import baseline_config  # noqa: E402
from emotify_history import EMOTIONS, GENRE_OFFSETS, fold_splits, read_targets  # noqa: E402

from encore.config import load_config  # noqa: E402
from encore.data.waveforms import load_waveforms  # noqa: E402
from encore.features.cache import FeatureCache  # noqa: E402
from encore.features.extract import compute_feature_rows  # noqa: E402
from encore.features.handcrafted import handcrafted_feature_names  # noqa: E402
from encore.train import svm as svm_module  # noqa: E402
from encore.train.baseline import fit_head  # noqa: E402

ROWS = [  # name, baseline overrides, whether the SVM's grid search runs in series (as before it took n_jobs)
    ("vote on songs, grid in series (reference)", {"estimator": "ensemble"}, True),
    ("vote on songs, grid on 2 cores", {"estimator": "ensemble"}, False),
    ("forest on 10-s segments", {"segment_seconds": 10.0}, False),
    ("vote on 10-s segments, grid in series", {"estimator": "ensemble", "segment_seconds": 10.0}, True),
    ("vote on 10-s segments, grid on 2 cores", {"estimator": "ensemble", "segment_seconds": 10.0}, False),
]


def _serial(*args, **kwargs):
    """The SVM's grid search as it ran before it took ``n_jobs``: one grid point after another."""
    return GridSearchCV(*args, **{**kwargs, "n_jobs": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/encore-classical-cache"))
    args = parser.parse_args()
    config = load_config(REPO / "configs" / "emotify_cv.yaml", [])
    songs, _ = read_targets(args.data)
    cache = FeatureCache(args.cache)
    sr, bc = config.features.sample_rate, config.baseline
    decoded, failures = load_waveforms(list(songs["path"]), sample_rate=sr, cache=cache)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    spec = {"sample_rate": sr, "n_fft": bc.n_fft, "hop_length": bc.hop_length, "max_segments": bc.max_segments, "cache": cache}
    rows = {seconds: compute_feature_rows(decoded, segment_seconds=seconds, **spec) for seconds in (None, 10.0)}
    train = np.flatnonzero(fold_splits(songs, 5, 0, val_fraction=0.0)[0] == "train")
    classes = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    names = handcrafted_feature_names()
    print(f"{len(train)} training songs; {os.cpu_count()} CPUs; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    reference = None
    for name, overrides, serial in ROWS:
        svm_module.GridSearchCV = _serial if serial else GridSearchCV  # the forests use 2 threads throughout
        seconds = overrides.get("segment_seconds")
        X, owner = rows[seconds]
        keep = np.isin(owner, train)
        groups = None if seconds is None else owner[keep]
        cfg = baseline_config(config, {**overrides, "seed": 0}, 2)
        t0 = time.perf_counter()
        for y, classification in (
            (classes, True),
            (songs[EMOTIONS].to_numpy(), False),
            (songs["appeal"].to_numpy(), False),
        ):
            fit_head(X[keep], y[owner[keep]], cfg, classification=classification, names=names, groups=groups)
        seconds_taken = time.perf_counter() - t0
        reference = reference or seconds_taken
        print(f"{name:45s} {int(keep.sum()):5d} rows {seconds_taken:7.1f} s  {seconds_taken / reference:5.2f}x the reference")


if __name__ == "__main__":
    main()
