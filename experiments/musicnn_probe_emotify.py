"""Frozen musicnn-msd embeddings + the song-level softmax probe on Emotify genres (issue 21).

The reference the issue names: each song's mean penultimate embedding of the converted
MSD model (encore's port, ``encore pretrained convert musicnn-msd`` first), a softmax
probe with its L2 strength chosen by cross-validation inside the training folds
(:func:`encore.train.transfer.fit_probe`'s class head), scored on 5 stratified folds.
Embeddings go through :func:`encore.train.transfer.cached_song_embeddings`, so a rerun
(or ``encore train --init-from pretrained:musicnn-msd --freeze-backbone`` on the same
decoded songs) reuses them.

    PYTHONPATH=src python experiments/musicnn_probe_emotify.py [--data ../shared/data/emotify/audio] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from encore.data.waveforms import load_waveforms
from encore.models.checkpoint import load_model
from encore.pretrained import resolve_run
from encore.train.transfer import _softmax_strength, cached_song_embeddings, default_embedding_cache, fit_softmax


def probe_predict(
    embeddings: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int, *, seed: int
) -> np.ndarray:
    """The probe fitted on ``train`` (standardised embeddings, L2 strength by inner 5-fold CV): classes of ``test``."""
    center, scale = embeddings[train].mean(0), embeddings[train].std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    x_train, x_test = (embeddings[train] - center) / scale, (embeddings[test] - center) / scale
    strength, _ = _softmax_strength(x_train, y[train], n_classes, n_folds=5, seed=seed)
    weight, bias = fit_softmax(x_train, y[train], strength, n_classes)
    return np.argmax(x_test @ weight + bias, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emotify/audio"))
    parser.add_argument("--model", default="pretrained:musicnn-msd")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    paths = sorted(args.data.glob("*/*.mp3"))
    genres = sorted({p.parent.name for p in paths})
    labels = np.array([genres.index(p.parent.name) for p in paths])
    model, card = load_model(resolve_run(args.model))
    sample_rate, chunk = card.sample_rate, card.chunk_samples
    t0 = time.perf_counter()
    waveforms, failures = load_waveforms(paths, sample_rate=sample_rate)
    t1 = time.perf_counter()
    keep = [i for i, w in enumerate(waveforms) if w is not None]
    embeddings = cached_song_embeddings(
        model,
        [waveforms[i] for i in keep],
        chunk_samples=chunk,
        hop_samples=chunk,
        bf16=False,
        cache_dir=default_embedding_cache(),
    )
    t2 = time.perf_counter()
    y = labels[keep]
    print(f"{len(keep)} songs ({len(failures)} failed to decode); decode {t1 - t0:.0f} s, embed {t2 - t1:.0f} s")
    for seed in (int(s) for s in args.seeds.split(",")):
        accuracies, fit_seconds = [], []
        for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(embeddings, y):
            start = time.perf_counter()
            predicted = probe_predict(embeddings, y, train, test, len(genres), seed=seed)
            fit_seconds.append(time.perf_counter() - start)
            accuracies.append(float(np.mean(predicted == y[test])))
        print(
            f"seed {seed}: genre accuracy {np.mean(accuracies):.3f} (folds {', '.join(f'{a:.3f}' for a in accuracies)}); "
            f"probe fit {np.mean(fit_seconds):.1f} s a fold"
        )


if __name__ == "__main__":
    main()
