"""Which musicnn layer should the probe read? Inner cross-validation on the training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_probe_layers.py extract [--data ../shared/data/emotify]
        [--models pretrained:musicnn-msd,pretrained:musicnn-mtt]
    PYTHONPATH=src python experiments/emotify_probe_layers.py inner [--seeds 0,1,2] [--vgg]
        [--out experiments/emotify_probe_layers.json]

``extract`` runs every Emotify song through each published model once, as the probe
embeds it (``cached_song_embeddings``: non-overlapping 3-s patches, float32; the product's
embedding cache is filled on the way), and keeps each song's mean of three layers of the
musicnn back end: ``penultimate`` (what the probe reads today: the dense layer after ReLU
and BatchNorm, 200-d), ``dense`` (the same layer before its ReLU: Essentia's choice for
its musicnn embeddings, 200-d) and ``pooled`` (the max and mean over time of the front and
mid end after BatchNorm, the dense layer's input, 1506-d; musicnn's ``max_pool``
features). They go to ``~/.cache/encore/experiments/probe_layers_<model>.npz``.

``inner`` never looks at a held-out fold. For each seed and each of the 5 outer folds of
the classical and CNN studies (``emotify_history.fold_splits``), it splits the fold's
*training* songs into 5 genre-stratified inner folds and scores each representation by
those inner folds alone: the probe's genre head (a multinomial logistic regression on
standardised features, its C chosen by 3 further folds), and ridge for the nine emotions'
vote shares and the appeal (``RidgeCV``'s efficient leave-one-out over a grid of
strengths). ``--vgg`` compares the VGG-like taggers (``musicnn-msd-vgg``, ``musicnn-mtt-vgg``:
``extract --models`` them first), alone and beside the pair, instead of the layers. The
representation the inner folds favour is the one to pre-register for the
held-out folds; this script prints no held-out figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import warnings

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402

logger = logging.getLogger("emotify_probe_layers")
LAYERS = ("penultimate", "dense", "pooled")
CANDIDATES = {
    "msd penultimate (shipped)": [("msd", "penultimate")],
    "msd dense (pre-ReLU)": [("msd", "dense")],
    "msd pooled": [("msd", "pooled")],
    "pair penultimate (shipped)": [("msd", "penultimate"), ("mtt", "penultimate")],
    "pair dense (pre-ReLU)": [("msd", "dense"), ("mtt", "dense")],
    "pair pooled": [("msd", "pooled"), ("mtt", "pooled")],
    "pair penultimate + pooled": [("msd", "penultimate"), ("mtt", "penultimate"), ("msd", "pooled"), ("mtt", "pooled")],
}
VGG_CANDIDATES = {
    "msd-vgg": [("msd-vgg", "penultimate")],
    "mtt-vgg": [("mtt-vgg", "penultimate")],
    "both vgg": [("msd-vgg", "penultimate"), ("mtt-vgg", "penultimate")],
    "msd + msd-vgg": [("msd", "penultimate"), ("msd-vgg", "penultimate")],
    "pair + msd-vgg": [("msd", "penultimate"), ("mtt", "penultimate"), ("msd-vgg", "penultimate")],
    "pair + mtt-vgg": [("msd", "penultimate"), ("mtt", "penultimate"), ("mtt-vgg", "penultimate")],
    "pair + both vgg": [("msd", "penultimate"), ("mtt", "penultimate"), ("msd-vgg", "penultimate"), ("mtt-vgg", "penultimate")],
}
"""The VGG-like taggers (their flattened last pooling, 256-d), alone and beside the musicnn pair: ``inner --vgg``."""


def layers_file(model_name: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encore" / "experiments"
    return cache / f"probe_layers_{model_name.split(':')[-1]}.npz"


def extract(songs, model_name: str) -> None:
    import torch

    from encore.data.waveforms import load_waveforms
    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run
    from encore.train.refit import song_embeddings
    from encore.train.transfer import cached_song_embeddings, default_embedding_cache

    model, card = load_model(resolve_run(model_name))
    model.eval()
    captured: list[tuple[np.ndarray, np.ndarray]] = []

    def hook(_module: torch.nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        captured.append((inputs[0].detach().double().numpy(), output.detach().double().numpy()))

    dense = getattr(model.backbone, "dense", None)  # the VGG taggers have only their embedding
    if dense is not None:
        dense.register_forward_hook(hook)
    waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    rows: dict[str, list[np.ndarray]] = {layer: [] for layer in LAYERS}
    spec = {"chunk_samples": card.chunk_samples, "hop_samples": card.chunk_samples, "bf16": False}
    for i, waveform in enumerate(waveforms):
        captured.clear()
        penultimate = cached_song_embeddings(model, [waveform], cache_dir=default_embedding_cache(), **spec)[0]
        rows["penultimate"].append(penultimate)
        if dense is not None:
            if not captured:  # the product cache had this song: run it again for the other layers
                song_embeddings(model, [waveform], **spec)
            rows["dense"].append(np.concatenate([c[1] for c in captured]).mean(0))
            rows["pooled"].append(np.concatenate([c[0] for c in captured]).mean(0))
        if i % 50 == 0:
            logger.info("%s: %d/%d songs", model_name, i, len(waveforms))
    path = layers_file(model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, track_id=songs["track_id"].to_numpy(str), **{k: np.stack(v) for k, v in rows.items() if v})
    logger.info("wrote %s", path)


def load_layers(songs) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for short in ("msd", "mtt", "msd-vgg", "mtt-vgg"):
        path = layers_file(f"pretrained:musicnn-{short}")
        if not path.exists():
            continue
        data = np.load(path, allow_pickle=True)
        if list(data["track_id"]) != list(songs["track_id"]):
            raise SystemExit(f"{path} holds other songs; run extract again")
        out.update({(short, layer): data[layer] for layer in LAYERS if layer in data})
    return out


def study_arguments(description: str, out_name: str) -> argparse.Namespace:
    """The inner-fold probe studies' command line (``--data``, ``--seeds``, ``--out``), their logging and warnings set."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / out_name)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's announced changes of defaults
    return args


def genre_and_targets(songs) -> tuple[np.ndarray, np.ndarray]:
    """Each song's genre index and its nine emotions' shares and appeal, ``(n_songs, 10)``."""
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    return y, songs[[*EMOTIONS, "appeal"]].to_numpy(float)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    center, scale = train.mean(0), train.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return (train - center) / scale, (test - center) / scale


def span_coordinates(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both in the coordinates of the training rows' span (their right singular vectors).

    An L2-penalised linear model's weights lie in that span, so its fits and predictions
    are the same there, with at most as many dimensions as songs.
    """
    basis = np.linalg.svd(x_train, full_matrices=False)[2].T
    return x_train @ basis, x_test @ basis


def inner_scores(x: np.ndarray, y: np.ndarray, targets: np.ndarray, seed: int) -> dict[str, float]:
    """5 inner folds of these (training) songs: genre accuracy, emotions' mean and appeal Spearman."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import StratifiedKFold

    classes = np.zeros(len(y), dtype=int)
    predicted = np.zeros_like(targets)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        x_train, x_test = span_coordinates(*_standardise(x[train], x[test]))
        search = LogisticRegressionCV(
            Cs=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0], cv=StratifiedKFold(3, shuffle=True, random_state=seed), max_iter=2000
        )
        classes[test] = search.fit(x_train, y[train]).predict(x_test)
        ridge = RidgeCV(alphas=np.logspace(-1, 5, 13)).fit(x_train, targets[train])
        predicted[test] = ridge.predict(x_test)
    rho = [spearmanr(targets[:, i], predicted[:, i])[0] for i in range(targets.shape[1])]
    return {"accuracy": float(np.mean(classes == y)), "emotions_mean": float(np.mean(rho[:-1])), "appeal": float(rho[-1])}


def inner(songs, seeds: list[int], out: Path, candidates: dict[str, list[tuple[str, str]]]) -> None:
    layers = load_layers(songs)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    targets = songs[[*EMOTIONS, "appeal"]].to_numpy(float)
    rows = []
    for seed in seeds:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            for name, parts in candidates.items():
                x = np.concatenate([layers[p] for p in parts], axis=1)[train]
                scores = inner_scores(x, y[train], targets[train], seed)
                rows.append({"seed": seed, "fold": fold, "candidate": name, **scores})
                logger.info("seed %d fold %d %-30s %s", seed, fold, name, {k: round(v, 3) for k, v in scores.items()})
    summary = {}
    base = [r for r in rows if r["candidate"] == "pair penultimate (shipped)"]
    for name in candidates:
        mine = [r for r in rows if r["candidate"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in mine])) for k in ("accuracy", "emotions_mean", "appeal")}
        summary[name]["genre_ahead_of_pair"] = int(sum(m["accuracy"] > b["accuracy"] for m, b in zip(mine, base, strict=True)))
        summary[name]["emotions_ahead_of_pair"] = int(
            sum(m["emotions_mean"] > b["emotions_mean"] for m, b in zip(mine, base, strict=True))
        )
    print(
        f"| representation | genre | emotions' mean | appeal | training folds ahead of the pair (genre, emotions) of {len(base)} |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, s in summary.items():
        print(
            f"| {name} | {s['accuracy']:.3f} | {s['emotions_mean']:.3f} | {s['appeal']:.3f} | "
            f"{s['genre_ahead_of_pair']}, {s['emotions_ahead_of_pair']} |"
        )
    report = {"command": "python " + " ".join(sys.argv), "summary": summary, "rows": rows}
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["extract", "inner"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--models", default="pretrained:musicnn-msd,pretrained:musicnn-mtt")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--vgg", action="store_true", help="inner: the VGG taggers beside the pair, not the layers")
    parser.add_argument("--out", type=Path, default=None, help="default experiments/emotify_probe_layers.json (_vgg)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's announced changes of defaults
    songs, _ = read_targets(args.data)
    if args.step == "extract":
        for name in args.models.split(","):
            extract(songs, name)
    else:
        pair = {"pair penultimate (shipped)": CANDIDATES["pair penultimate (shipped)"]}
        candidates = {**pair, **VGG_CANDIDATES} if args.vgg else CANDIDATES
        out = args.out or REPO / "experiments" / ("emotify_probe_vgg.json" if args.vgg else "emotify_probe_layers.json")
        inner(songs, [int(s) for s in args.seeds.split(",")], out, candidates)


if __name__ == "__main__":
    main()
