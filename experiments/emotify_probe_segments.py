"""The probe trained on a song's segments, not its one mean embedding: inner cross-validation on the training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_segments.py extract [--data ../shared/data/emotify]
    PYTHONPATH=src python experiments/emotify_probe_segments.py inner [--seeds 0,1,2]
        [--out experiments/emotify_probe_segments_inner.json]
    SEGMENT_CANDIDATE=seg3 PYTHONPATH=src python experiments/emotify_probe_segments.py heldout
        [--out experiments/emotify_probe_segments_heldout.json]

The product's probe fits its heads on one row a training song, the mean of the song's
3-s patch embeddings (musicnn-msd and musicnn-mtt side by side, 400-d), and predicts a
song from the same mean: its heads are linear and it averages logits, so a song's output
is the heads at its mean embedding. The classical models gained about three points of
genre accuracy when they were trained on 10-s segments instead of one summary a song
(the segments study in experiments/README.md). Here the probe's heads are trained on
segment rows instead: ``seg3`` (the mean of 3 consecutive patches, 8.9 s, the last group
kept if it holds at least 2) and ``patch`` (every 3-s patch a row), every row carrying
its song's genre and targets. Prediction is unchanged: the heads at the song's mean
embedding, which equals the mean of its rows' logits.

``extract`` runs every Emotify song through both taggers once, float32, and keeps each
patch's penultimate embedding (``~/.cache/encore/experiments/probe_patches_<model>.npz``).

``inner`` never looks at a held-out fold. For each seed and each of the 5 outer folds of
the earlier studies (``emotify_history.fold_splits``), it splits the fold's *training*
songs into 5 genre-stratified inner folds and scores each candidate there. Every head is
fitted on standardised rows, as the product fits its probe: the genre by its softmax
(``fit_softmax``), the appeal by its ridge on the standardised score (``fit_ridge``), the
nine emotions by ridge on their shares (the product uses its soft logistic, which costs
an L-BFGS fit a strength; ridge costs one eigendecomposition for all). Each head's L2
strength comes from the product's grid, chosen by 3 further folds of the training
*songs* (a held song's rows all left out), on the held songs' log loss and squared
error at their mean embeddings, where the probe predicts. ``song`` has one row a song.

``heldout`` (only once the pre-registered rule in experiments/README.md has kept a
candidate, named by ``SEGMENT_CANDIDATE``) fits the product's heads exactly, the
emotions by its soft logistic and every strength by 5 folds of the training songs, on
each outer fold's 320 training songs, predicts the 80 held-out songs, and pairs the
candidate with ``song`` over the 3 seeds (bootstrap over songs).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, fold_splits, read_targets  # noqa: E402
from emotify_probe_layers import genre_and_targets, study_arguments  # noqa: E402

logger = logging.getLogger("emotify_probe_segments")
MODELS = ("pretrained:musicnn-msd", "pretrained:musicnn-mtt")
CANDIDATES = {"song": None, "seg3": 3, "patch": 1}
"""Patches a training row averages (None: the whole song, as the product's probe)."""
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
ALPHAS = tuple(np.logspace(-1, 5, 13))


def patches_file(model_name: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encore" / "experiments"
    return cache / f"probe_patches_{model_name.split(':')[-1]}.npz"


def extract(songs, model_name: str) -> None:
    import torch

    from encore.audio.chunking import chunk_waveform
    from encore.data.waveforms import load_waveforms
    from encore.inference.predictor import MIN_FRACTION
    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    torch.set_num_threads(2)
    model, card = load_model(resolve_run(model_name))
    model.eval()
    waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    rows, counts = [], []
    for i, waveform in enumerate(waveforms):
        chunks = chunk_waveform(
            np.asarray(waveform, dtype=np.float32),
            chunk_samples=card.chunk_samples,
            hop_samples=card.hop_samples,
            min_fraction=MIN_FRACTION,
        )
        with torch.no_grad():
            rows.append(model.forward_features(torch.from_numpy(np.ascontiguousarray(chunks))).float().numpy())
        counts.append(len(chunks))
        if i % 50 == 0:
            logger.info("%s: %d/%d songs", model_name, i, len(waveforms))
    path = patches_file(model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, track_id=songs["track_id"].to_numpy(str), patches=np.concatenate(rows), counts=np.array(counts))
    logger.info("wrote %s", path)


def load_patches(songs) -> list[np.ndarray]:
    """Each song's patch embeddings, both taggers side by side: ``(n_patches, 400)`` a song."""
    parts = []
    for name in MODELS:
        data = np.load(patches_file(name))
        if list(data["track_id"]) != list(songs["track_id"]):
            raise SystemExit(f"{patches_file(name)} holds other songs; run extract again")
        parts.append(np.split(data["patches"].astype(np.float64), np.cumsum(data["counts"])[:-1]))
    return [np.concatenate(p, axis=1) for p in zip(*parts, strict=True)]


def song_rows(patches: np.ndarray, size: int | None) -> np.ndarray:
    """A song's training rows: its mean (None), or the means of consecutive groups of ``size`` patches."""
    if size is None or len(patches) < size:
        return patches.mean(0, keepdims=True)
    groups = [patches[i : i + size] for i in range(0, len(patches), size)]
    return np.stack([g.mean(0) for g in groups if len(g) >= min(size, 2)])


class Rows:
    """The rows of some songs for one candidate: features, and the song (0..n-1 among them) each row is from."""

    def __init__(self, patches: list[np.ndarray], songs: np.ndarray, size: int | None) -> None:
        blocks = [song_rows(patches[s], size) for s in songs]
        self.x = np.concatenate(blocks)
        self.song = np.repeat(np.arange(len(songs)), [len(b) for b in blocks])
        self.means = np.stack([patches[s].mean(0) for s in songs])


def _scaled(train_rows: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    center, scale = train_rows.mean(0), train_rows.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return [(a - center) / scale for a in (train_rows, *others)]


def _ridge_path(x: np.ndarray, y: np.ndarray, strengths) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`encore.train.refit.fit_ridge` at every strength, from one eigendecomposition."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    values, vectors = np.linalg.eigh(xc.T @ xc / len(x))
    projected = vectors.T @ (xc.T @ yc / len(x))
    out = []
    for strength in strengths:
        weight = vectors @ (projected / (values + strength)[:, None])
        out.append((weight, y_mean - x_mean @ weight))
    return out


def fit_heads(train: Rows, y_song, shares, appeal, *, n_folds: int, seed: int, exact: bool) -> dict:
    """The probe's heads fitted on ``train``'s rows, every L2 strength chosen by ``n_folds`` folds of its *songs*
    (each held song's rows left out; the loss scored at the held songs' mean embeddings, as the probe predicts).

    The genre is the product's softmax (``fit_softmax``) and the appeal its ridge on the
    standardised score (``fit_ridge``). The emotions' shares are the product's soft
    logistic (``fit_soft_logistic``) with ``exact``; else ridge, which the inner folds use
    because it costs one eigendecomposition for all strengths.
    Returns each head's weight and bias, and the chosen strengths.
    """
    from encore.train.refit import STRENGTHS, _bce, _mse, fit_soft_logistic
    from encore.train.transfer import fit_softmax

    n_classes = int(y_song.max()) + 1
    shift, spread = appeal.mean(), appeal.std()
    z = ((appeal - shift) / spread)[:, None]
    order = np.random.default_rng(seed).permutation(len(y_song))
    losses = {"class": np.zeros(len(STRENGTHS)), "emotions": np.zeros(len(STRENGTHS)), "appeal": np.zeros(len(STRENGTHS))}
    for held in np.array_split(order, n_folds):
        keep = ~np.isin(train.song, held)
        x, x_held = _scaled(train.x[keep], train.means[held])
        songs = train.song[keep]
        for i, strength in enumerate(STRENGTHS):
            w, b = fit_softmax(x, y_song[songs], strength, n_classes)
            logits = x_held @ w + b
            log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
            losses["class"][i] -= log_probs[np.arange(len(held)), y_song[held]].sum()
            if exact:
                w, b = fit_soft_logistic(x, shares[songs], strength)
                losses["emotions"][i] += _bce(x_held @ w + b, shares[held]) * len(held)
        if not exact:
            for i, (w, b) in enumerate(_ridge_path(x, shares[songs], STRENGTHS)):
                losses["emotions"][i] += _mse(x_held @ w + b, shares[held]) * len(held)
        for i, (w, b) in enumerate(_ridge_path(x, z[songs], STRENGTHS)):
            losses["appeal"][i] += _mse(x_held @ w + b, z[held]) * len(held)
    chosen = {head: STRENGTHS[int(np.argmin(loss))] for head, loss in losses.items()}
    center, scale = train.x.mean(0), train.x.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    x = (train.x - center) / scale
    heads = {"class": fit_softmax(x, y_song[train.song], chosen["class"], n_classes)}
    if exact:
        heads["emotions"] = fit_soft_logistic(x, shares[train.song], chosen["emotions"])
    else:
        heads["emotions"] = _ridge_path(x, shares[train.song], [chosen["emotions"]])[0]
    heads["appeal"] = _ridge_path(x, z[train.song], [chosen["appeal"]])[0]
    return {
        "heads": heads,
        "center": center,
        "scale": scale,
        "shift": shift,
        "spread": spread,
        "exact": exact,
        "strengths": chosen,
    }


def predict(fitted: dict, means: np.ndarray) -> dict[str, np.ndarray]:
    """Songs' genre probabilities, emotion shares and appeal at their mean embeddings."""
    from scipy.special import expit, softmax

    x = (means - fitted["center"]) / fitted["scale"]
    w, b = fitted["heads"]["class"]
    emotions = x @ fitted["heads"]["emotions"][0] + fitted["heads"]["emotions"][1]
    w_a, b_a = fitted["heads"]["appeal"]
    return {
        "class_probs": softmax(x @ w + b, axis=1),
        "emotions": expit(emotions) if fitted["exact"] else emotions,
        "appeal": (x @ w_a + b_a)[:, 0] * fitted["spread"] + fitted["shift"],
    }


def _scores(y: np.ndarray, targets: np.ndarray, out: dict[str, np.ndarray]) -> dict[str, float]:
    rho = [spearmanr(targets[:, i], out["emotions"][:, i])[0] for i in range(len(EMOTIONS))]
    return {
        "accuracy": float(np.mean(out["class_probs"].argmax(1) == y)),
        "emotions_mean": float(np.mean(rho)),
        "appeal": float(spearmanr(targets[:, -1], out["appeal"])[0]),
    }


def inner_scores(y, targets, songs_idx, seed, n_inner: int, rows_of, summary_of) -> tuple[dict[str, float], list[dict]]:
    """``n_inner`` folds of the songs ``songs_idx``: heads fitted on ``rows_of(train songs)`` (ridge for the
    emotions, strengths by 3 further folds), each held song predicted at ``summary_of(its index)``."""
    from sklearn.model_selection import StratifiedKFold

    out = {
        "class_probs": np.zeros((len(songs_idx), int(y.max()) + 1)),
        "emotions": np.zeros((len(songs_idx), len(EMOTIONS))),
        "appeal": np.zeros(len(songs_idx)),
    }
    chosen = []
    for train, test in StratifiedKFold(n_inner, shuffle=True, random_state=seed).split(songs_idx, y[songs_idx]):
        t = targets[songs_idx[train]]
        fitted = fit_heads(rows_of(songs_idx[train]), y[songs_idx[train]], t[:, :-1], t[:, -1], n_folds=3, seed=seed, exact=False)
        for key, value in predict(fitted, summary_of(songs_idx[test])).items():
            out[key][test] = value
        chosen.append(fitted["strengths"])
    return _scores(y[songs_idx], targets[songs_idx], out), chosen


def inner_rows(songs, seeds: list[int], names, score) -> list[dict]:
    """Every seed's 5 outer folds: ``score(name, training song indices, seed)`` for each candidate, a row each."""
    rows = []
    for seed in seeds:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            for name in names:
                start = time.perf_counter()
                scores, chosen = score(name, train, seed)
                rows.append({"seed": seed, "fold": fold, "candidate": name, **scores, "chosen": chosen})
                logger.info(
                    "seed %d fold %d %-8s %s (%.0f s)",
                    seed,
                    fold,
                    name,
                    {k: round(v, 3) for k, v in scores.items()},
                    time.perf_counter() - start,
                )
    return rows


def inner(songs, seeds: list[int], out: Path, n_inner: int) -> None:
    patches = load_patches(songs)
    y, targets = genre_and_targets(songs)

    def score(name, train, seed):
        size = CANDIDATES[name]
        means = lambda idx: np.stack([patches[s].mean(0) for s in idx])  # noqa: E731
        return inner_scores(y, targets, train, seed, n_inner, lambda idx: Rows(patches, idx, size), means)

    rows = inner_rows(songs, seeds, list(CANDIDATES), score)
    summarise_inner(rows, list(CANDIDATES), out)


def summarise_inner(rows: list[dict], names: list[str], out: Path) -> None:
    """Each candidate's inner-fold means and the folds it is ahead of (behind) ``song`` in: a table, and ``out``."""
    summary = {}
    base = [r for r in rows if r["candidate"] == "song"]
    keys = ("accuracy", "emotions_mean", "appeal")
    for name in names:
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


def pair_heldout(songs, y, patches, seeds: list[int], out: Path, candidate: str, fold_fit_for) -> None:
    """``candidate`` and ``song`` on the outer folds (``fold_fit_for(name)`` fits a fold), paired over the seeds."""
    from emotify_probe_targets import paired, run_seeds

    results = {name: run_seeds(songs, y, patches, seeds, fold_fit_for(name)) for name in ("song", candidate)}
    for name, result in results.items():
        logger.info("%s: %s", name, result["summary"])
    report = {
        "command": "python " + " ".join(sys.argv),
        **{name: {k: v for k, v in r.items() if k not in ("classes", "scores")} for name, r in results.items()},
        f"{candidate}_minus_song": paired(songs, y, results[candidate], results["song"]),
    }
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "command"}, indent=1)[:4000])


def heldout(songs, seeds: list[int], out: Path, candidate: str) -> None:
    """The kept candidate and ``song`` on the outer folds, the product's heads (5 song folds for the strengths), paired."""
    patches = load_patches(songs)
    y, targets = genre_and_targets(songs)

    def fold_fit(name):
        size = CANDIDATES[name]
        return exact_fold_fit(
            targets, lambda train: Rows(patches, train, size), lambda test: np.stack([patches[s].mean(0) for s in test])
        )

    pair_heldout(songs, y, patches, seeds, out, candidate, fold_fit)


def exact_fold_fit(targets: np.ndarray, rows_of, summary_of):
    """A ``run_seeds`` fold fit: the product's heads exactly (strengths by 5 folds of the training songs) on
    ``rows_of(train)``, predicting the held-out songs at ``summary_of(test)``."""

    def fit(_embeddings, _songs, y, train, test, seed):
        fitted = fit_heads(rows_of(train), y[train], targets[train, :-1], targets[train, -1], n_folds=5, seed=seed, exact=True)
        predicted = predict(fitted, summary_of(test))
        return {
            "classes": predicted["class_probs"].argmax(1),
            "emotions": predicted["emotions"],
            "appeal": predicted["appeal"],
            "strengths": fitted["strengths"],
        }

    return fit


def main() -> None:
    steps = ("extract", "inner", "heldout")
    step = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in steps else None
    if step is None:
        raise SystemExit("usage: emotify_probe_segments.py {extract,inner,heldout} [--data DIR] [--seeds 0,1,2] [--out FILE]")
    candidate = os.environ.get("SEGMENT_CANDIDATE", "")
    inner_folds = int(os.environ.get("INNER_FOLDS", "5"))
    args = study_arguments(__doc__.splitlines()[0], f"emotify_probe_segments_{step}.json")
    songs, _ = read_targets(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    if step == "extract":
        for name in MODELS:
            extract(songs, name)
    elif step == "inner":
        inner(songs, seeds, args.out, inner_folds)
    else:
        if candidate not in CANDIDATES or candidate == "song":
            raise SystemExit("heldout: set SEGMENT_CANDIDATE to the candidate the inner folds kept (seg3 or patch)")
        heldout(songs, seeds, args.out, candidate)


if __name__ == "__main__":
    main()
