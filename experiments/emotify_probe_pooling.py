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

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import read_targets  # noqa: E402
from emotify_probe_layers import genre_and_targets, study_arguments  # noqa: E402
from emotify_probe_segments import (  # noqa: E402
    exact_fold_fit,
    inner_rows,
    inner_scores,
    load_patches,
    pair_heldout,
    summarise_inner,
)

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


def inner(songs, seeds: list[int], out: Path, n_inner: int) -> None:
    patches = load_patches(songs)
    features = {name: np.stack([pool(p) for p in patches]) for name, pool in POOLINGS.items()}
    y, targets = genre_and_targets(songs)

    def score(name, train, seed):
        pooled = features[name]
        return inner_scores(y, targets, train, seed, n_inner, lambda idx: SongRows(pooled, idx), lambda idx: pooled[idx])

    rows = inner_rows(songs, seeds, list(POOLINGS), score)
    summarise_inner(rows, list(POOLINGS), out)


def heldout(songs, seeds: list[int], out: Path, candidate: str) -> None:
    """The kept candidate and ``song`` on the outer folds, the product's heads (5 song folds for the strengths), paired."""
    patches = load_patches(songs)
    y, targets = genre_and_targets(songs)

    def fold_fit(name):
        features = np.stack([POOLINGS[name](p) for p in patches])
        return exact_fold_fit(targets, lambda train: SongRows(features, train), lambda test: features[test])

    pair_heldout(songs, y, patches, seeds, out, candidate, fold_fit)


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
