"""Few labels on Emotify genres: frozen musicnn-msd + probe against the from-scratch CNN (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_learning_curve.py [--data ../shared/data/emotify]
        [--seeds 0,1,2] [--sizes 10,25,50,all] [--cnn-sizes 10] [--out experiments/emotify_learning_curve.json]
        [--model A[,B]] [--probe-name probe] [--resume]

``--resume`` keeps the rows already in ``--out`` and runs only the missing (seed, fold, size,
model) cells. The CNN trains in float32 whatever the CPU (``train.precision: fp32``), so
the figures are the same on a CPU with and without bfloat16.

The held-out folds are the CNN studies' (emotify_history.py's ``fold_splits`` with no
validation share: 5 folds stratified by genre, ``random_state`` = the seed). From each
fold's 320 training songs, ``n`` songs a genre are drawn (one seeded permutation per genre
and fold, its first ``n``, so a smaller set is inside every larger one); every model of
that size trains on the same songs and is scored on the whole held-out fold.

- ``probe``: each song's mean musicnn-msd embedding (encore's port, ``encore pretrained
  convert musicnn-msd`` first; cached under ``~/.cache/encore/embeddings``), the softmax
  probe with its L2 strength chosen by 5-fold CV inside the drawn songs.
- ``cnn``: ``configs/emotify_cv.yaml``'s from-scratch CNN (the full schedule, last
  epoch's average, no validation songs) trained on the drawn songs, for the sizes in
  ``--cnn-sizes`` (it costs minutes a fold).

Nothing here is tuned on the held-out folds: both recipes are the shipped ones, run once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import GENRE_OFFSETS, REPO, fold_splits, make_manifest, read_targets  # noqa: E402
from musicnn_probe_emotify import probe_predict  # noqa: E402

from encore.config import load_config  # noqa: E402
from encore.data.waveforms import load_waveforms  # noqa: E402
from encore.inference import Predictor  # noqa: E402
from encore.models.checkpoint import load_model  # noqa: E402
from encore.pretrained import resolve_run  # noqa: E402
from encore.train.loop import fit  # noqa: E402
from encore.train.transfer import cached_song_embeddings, default_embedding_cache  # noqa: E402

logger = logging.getLogger("emotify_learning_curve")


def embed(songs, model_name: str) -> np.ndarray:
    model, card = load_model(resolve_run(model_name))
    waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    return cached_song_embeddings(
        model,
        [w for w in waveforms if w is not None],
        chunk_samples=card.chunk_samples,
        hop_samples=card.chunk_samples,
        bf16=False,
        cache_dir=default_embedding_cache(),
    )


def cnn_predict(songs, waveforms: dict, train: np.ndarray, test: np.ndarray, config, seed: int) -> np.ndarray:
    """The from-scratch CNN trained on ``train`` (all of it, full schedule): class indices of ``test``."""
    splits = np.array(["unused"] * len(songs), dtype=object)
    splits[train], splits[test] = "train", "test"
    keep = np.flatnonzero(splits != "unused")
    manifest = make_manifest(songs.iloc[keep].reset_index(drop=True), splits[keep])
    config = config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})
    with tempfile.TemporaryDirectory() as run_dir:
        result = fit(manifest, waveforms, config, run_dir)
        predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
        probs = predictor.predict_arrays([waveforms[t] for t in songs["track_id"].iloc[test]])["class_probs"]
    order = [predictor.label_names.index(g) for g in sorted(GENRE_OFFSETS)]
    return probs[:, order].argmax(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--model", default="pretrained:musicnn-msd", help="one model, or several side by side (comma)")
    parser.add_argument("--probe-name", default="probe", help="the probe's rows' model name (another for another --model)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sizes", default="10,25,50,all")
    parser.add_argument("--cnn-sizes", default="10")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_learning_curve.json")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    songs, _ = read_targets(args.data)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    sizes = [None if s == "all" else int(s) for s in args.sizes.split(",")]
    cnn_sizes = {None if s == "all" else int(s) for s in args.cnn_sizes.split(",") if s}
    t0 = time.perf_counter()
    embeddings = np.concatenate([embed(songs, name) for name in args.model.split(",")], axis=1)  # several: side by side
    logger.info("embedded %d songs in %.0f s", len(embeddings), time.perf_counter() - t0)
    config = load_config(args.config)
    config = config.model_copy(update={"train": config.train.model_copy(update={"precision": "fp32"})})
    waveforms: dict = {}
    if cnn_sizes:
        decoded, failures = load_waveforms(list(songs["path"]), sample_rate=config.features.sample_rate)
        waveforms = dict(zip(songs["track_id"], decoded, strict=True))
    rows = json.loads(args.out.read_text(encoding="utf-8"))["rows"] if args.resume and args.out.exists() else []
    done = {(r["seed"], r["fold"], r["size"], r["model"]) for r in rows}
    for seed in (int(s) for s in args.seeds.split(",")):
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            rng = np.random.default_rng([seed, fold])
            order = {g: rng.permutation(train[y[train] == g]) for g in np.unique(y[train])}
            for n in sizes:
                chosen = np.sort(np.concatenate([own if n is None else own[:n] for own in order.values()]))
                models = {args.probe_name: lambda c=chosen: probe_predict(embeddings, y, c, test, len(GENRE_OFFSETS), seed=seed)}
                if n in cnn_sizes:
                    models["cnn"] = lambda c=chosen: cnn_predict(songs, waveforms, c, test, config, seed)
                for name, predict in models.items():
                    if (seed, fold, "all" if n is None else n, name) in done:
                        continue
                    start = time.perf_counter()
                    correct = predict() == y[test]
                    row = {
                        "seed": seed,
                        "fold": fold,
                        "size": "all" if n is None else n,
                        "model": name,
                        "n_train": int(len(chosen)),
                        "accuracy": float(correct.mean()),
                        "correct": correct.astype(int).tolist(),
                        "test": songs["track_id"].iloc[test].tolist(),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                    rows.append(row)
                    logger.info(
                        "seed %d fold %d size %s %s: %.3f (%.0f s)",
                        seed,
                        fold,
                        row["size"],
                        name,
                        row["accuracy"],
                        row["seconds"],
                    )
                    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}), encoding="utf-8")
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    """Per size and model: accuracy pooled over each seed's folds, mean and sd over seeds; the probe minus the CNN."""
    seeds = sorted({r["seed"] for r in rows})
    by = {}
    for r in rows:
        by.setdefault((r["size"], r["model"]), {}).setdefault(r["seed"], []).append(r)
    print("| songs a genre | model | accuracy (mean over seeds ± sd) | per seed |")
    print("| --- | --- | --- | --- |")
    for (size, model), per_seed in by.items():
        values = [np.concatenate([r["correct"] for r in per_seed[s]]).mean() for s in seeds if s in per_seed]
        print(f"| {size} | {model} | {np.mean(values):.3f} ± {np.std(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    probes = sorted({r["model"] for r in rows if r["model"] != "cnn"})
    for probe in probes:
        for size in sorted({r["size"] for r in rows if r["model"] == "cnn"}, key=str):
            if (size, probe) not in by:
                continue
            # per song, the probe's correctness minus the CNN's, averaged over the seeds; resampled over songs
            per_song: dict[str, list[float]] = {}
            for s in seeds:
                got = {
                    m: {t: c for r in by[(size, m)].get(s, []) for t, c in zip(r["test"], r["correct"], strict=True)}
                    for m in (probe, "cnn")
                }
                for t in got[probe].keys() & got["cnn"].keys():
                    per_song.setdefault(t, []).append(got[probe][t] - got["cnn"][t])
            diff = np.array([np.mean(v) for v in per_song.values()])
            rng = np.random.default_rng(0)
            boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]
            print(
                f"{probe} - cnn at {size} a genre ({len(diff)} songs): {diff.mean():+.3f} "
                f"[{np.percentile(boot, 2.5):+.3f}, {np.percentile(boot, 97.5):+.3f}]"
            )


if __name__ == "__main__":
    main()
