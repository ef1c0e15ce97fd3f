"""Emotify 5-fold cross-validation: the CNN against the random-forest baseline.

Usage:
    python bench/bench_emotify_cv.py [--data ../shared/data/emotify] [--folds 5] [--models cnn,rf]
                                     [--config configs/emotify_cv.yaml] [--set train.epochs=30 ...]
                                     [--only-folds 0,1] [--val-fraction 0] [--out bench/emotify_cv.json]
                                     [--predictions predictions.csv]
                                     [--reuse-runs]

Targets come straight from the annotations (one row per listener answer): the genre (4
classes, 100 songs each), the nine GEMS emotion rates (the share of a song's listeners who
ticked each emotion; soft multi-label targets) and the appeal score (mean of liked minus
disliked). Folds are stratified by genre (Emotify names no artists) and are the same for
every model. By default both models train on all of a fold's training songs (the CNN for
its full schedule, train.select: last); --val-fraction 0.15 holds a stratified share out
for early stopping and temperature fitting instead. Both models train on the same songs and are scored on the
same held-out fold; predictions are pooled over the folds for the headline numbers
(accuracy with a bootstrap 95 % interval, Spearman per target next to the target's
split-half reliability ceiling) and the per-fold train times are reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import StratifiedKFold, train_test_split

from encore.config import load_config
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.data.waveforms import load_waveforms
from encore.evaluate.metrics import bootstrap_ci, compare_paired
from encore.features.cache import FeatureCache
from encore.inference import Predictor
from encore.inference.baseline import BaselinePredictor
from encore.train.baseline import fit_baseline
from encore.train.loop import fit
from encore.train.objectives import select_split
from encore.train.refit import refit_checkpoint

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = ["amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension", "sadness"]
GENRE_OFFSETS = {"classical": 0, "rock": 100, "electronic": 200, "pop": 300}


def read_targets(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-song targets and the raw annotations (for reliability)."""
    votes = pd.read_csv(data / "annotations.csv", skipinitialspace=True)
    votes.columns = [c.strip() for c in votes.columns]
    votes["appeal"] = votes["liked"] - votes["disliked"]
    songs = votes.groupby("track id").agg(genre=("genre", "first"), **{e: (e, "mean") for e in EMOTIONS},
                                         appeal=("appeal", "mean"), appeal_vote_sd=("appeal", "std"),
                                         n_votes=("liked", "size")).reset_index()
    songs["genre"] = songs["genre"].str.strip()
    songs["path"] = [
        str(data / "audio" / g / f"{t - GENRE_OFFSETS[g]}.mp3") for t, g in zip(songs["track id"], songs["genre"], strict=True)
    ]
    songs["track_id"] = songs["track id"].astype(str)
    return songs, votes


def split_half_ceiling(votes: pd.DataFrame, column: str, *, n_splits: int = 50, seed: int = 0) -> tuple[float, float]:
    """Spearman-Brown corrected split-half reliability of a per-song rate, and its square root."""
    rng = np.random.default_rng(seed)
    groups = [g[column].to_numpy(float) for _, g in votes.groupby("track id")]
    values = []
    for _ in range(n_splits):
        a, b = [], []
        for g in groups:
            order = rng.permutation(len(g))
            half = len(g) // 2
            a.append(g[order[:half]].mean())
            b.append(g[order[half:]].mean())
        r = spearmanr(a, b).statistic
        values.append(2 * r / (1 + r))
    reliability = float(np.mean(values))
    return reliability, float(np.sqrt(max(reliability, 0.0)))


def make_manifest(songs: pd.DataFrame, splits: np.ndarray) -> Manifest:
    frame = pd.DataFrame({
        "track_id": songs["track_id"], "path": songs["path"], "artist": "", "title": "", "split": splits,
        "label": songs["genre"], "appeal": songs["appeal"],
        # the evidence behind each song's rates, for train.target_weighting: evidence
        "appeal_sd": songs["appeal_vote_sd"] / np.sqrt(songs["n_votes"]), "tag_support": songs["n_votes"],
        **{TAG_PREFIX + e: songs[e] for e in EMOTIONS},
    })
    return Manifest(frame=frame, label_names=sorted(GENRE_OFFSETS), tag_names=EMOTIONS, regression_names=["appeal"],
                    info={"source": "emotify annotations"})


def fold_splits(songs: pd.DataFrame, n_folds: int, seed: int, val_fraction: float = 0.15) -> list[np.ndarray]:
    genres = songs["genre"].to_numpy()
    out = []
    for train_idx, test_idx in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(genres, genres):
        splits = np.array(["train"] * len(songs), dtype=object)
        splits[test_idx] = "test"
        if val_fraction > 0:
            _, val_idx = train_test_split(train_idx, test_size=val_fraction, stratify=genres[train_idx], random_state=seed)
            splits[val_idx] = "val"
        out.append(splits)
    return out


WIDE_PATH = ("band_statistics", "cepstral_statistics")
"""Model settings that only the song-level refit reads: the networks train the same without them."""


def refit_song_heads(run_dir: Path, manifest: Manifest, waveforms: dict, *, hop_seconds: float,
                     band_statistics: bool, cepstral_statistics: int = 0) -> Predictor:
    """The run's trained network with its tag and score heads refit on the fold's training
    songs, the wide path set as given (see :func:`encore.train.refit.refit_checkpoint`)."""
    model, card = refit_checkpoint(run_dir / "checkpoint.pt", select_split(manifest, "train", waveforms),
                                   band_statistics=band_statistics, cepstral_statistics=cepstral_statistics,
                                   hop_seconds=hop_seconds)
    return Predictor(model, card)


def reuse_cnn_run(run_dir: Path, config, manifest: Manifest, waveforms: dict) -> tuple[Predictor, float]:
    """An earlier run's network, scored with this config's chunk hop and song-level heads, and its training time.

    The hop only changes how whole songs are scored, and the wide path
    (``model.band_statistics``, ``model.cepstral_statistics``) only what the song-level refit
    reads; with no validation split (--val-fraction 0) nothing in training depends on either,
    so the weights are those a new run would train. When the wide path differs from the
    run's, the heads are refit on the fold's training songs (:func:`refit_song_heads`).
    """
    if len(manifest.subset("val")):
        raise SystemExit("--reuse-runs needs --val-fraction 0: with validation songs the hop also steers training")
    trained = load_config(run_dir / "config.yaml", [])
    mine, theirs = config.model_dump(), trained.model_dump()
    wide = []
    for settings in (mine, theirs):
        settings["train"].pop("chunk_hop_seconds")
        wide.append({key: settings["model"].pop(key) for key in WIDE_PATH})
    if mine != theirs:
        raise SystemExit(f"{run_dir} was trained with other settings than these; run without --reuse-runs")
    predictor = Predictor.from_checkpoint(run_dir / "checkpoint.pt")
    if predictor.card["manifest"]["digest"] != manifest.digest():
        raise SystemExit(f"{run_dir} was trained on another split (--folds, --seed, --val-fraction); run without --reuse-runs")
    hop = config.train.chunk_hop_seconds or config.train.chunk_seconds
    if wide[0] != wide[1]:
        predictor = refit_song_heads(run_dir, manifest, waveforms, hop_seconds=hop, **wide[0])
    predictor.card["chunk_hop_seconds"] = hop
    seconds = float(pd.read_csv(run_dir / "metrics.csv")["seconds"].sum())
    return predictor, seconds


def predict_test(predictor, manifest: Manifest, waveforms: dict) -> tuple[list[str], dict[str, np.ndarray]]:
    test = manifest.subset("test")
    ids = [t for t in test["track_id"] if waveforms.get(t) is not None]
    return ids, predictor.predict_arrays([waveforms[t] for t in ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", default=None, help="comma-separated fold numbers to run (default all)")
    parser.add_argument("--models", default="cnn,rf")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override a.b=v")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/encore-bench-cache"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/encore-bench-runs"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="share of each fold's training songs held out for validation (0 = train on all of them; "
                        "use with train.select=last, as there is then nothing to stop early on or calibrate with)")
    parser.add_argument("--out", type=Path, default=None, help="write all numbers as JSON here")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="write every held-out song's predictions (one row per model and song) as CSV here")
    parser.add_argument("--reuse-runs", action="store_true",
                        help="score the CNN checkpoints already in --runs instead of training them again (train time "
                        "from the run's metrics.csv); only the scoring settings (train.chunk_hop_seconds) and the "
                        "song-level heads' wide path (model.band_statistics, model.cepstral_statistics; the heads are "
                        "then refit) may differ")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("encore.train.loop").setLevel(logging.WARNING)

    config = load_config(args.config, args.overrides)
    songs, votes = read_targets(args.data)
    t0 = time.perf_counter()
    decoded, failures = load_waveforms(list(songs["path"]), sample_rate=config.features.sample_rate, cache=FeatureCache(args.cache))
    waveforms = dict(zip(songs["track_id"], decoded, strict=True))
    print(f"decoded {len(songs) - len(failures)} songs ({len(failures)} failed) in {time.perf_counter() - t0:.1f} s", flush=True)

    models = args.models.split(",")
    folds = fold_splits(songs, args.folds, args.seed, args.val_fraction)
    wanted = [int(f) for f in args.only_folds.split(",")] if args.only_folds else range(args.folds)
    pooled: dict[str, dict] = {m: {"ids": [], "arrays": []} for m in models}
    times: dict[str, list[float]] = {m: [] for m in models}
    for k in wanted:
        manifest = make_manifest(songs, folds[k])
        for name in models:
            run_dir = args.runs / f"fold{k}-{name}"
            t = time.perf_counter()
            if name == "cnn" and args.reuse_runs:
                predictor, seconds = reuse_cnn_run(run_dir, config, manifest, waveforms)
            elif name == "cnn":
                shutil.rmtree(run_dir, ignore_errors=True)
                result = fit(manifest, waveforms, config, run_dir)
                predictor = Predictor.from_checkpoint(result.checkpoint)
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
                fit_baseline(manifest, waveforms, config, run_dir, cache=FeatureCache(args.cache))
                predictor = BaselinePredictor.from_run(run_dir)
            if not (name == "cnn" and args.reuse_runs):
                seconds = time.perf_counter() - t
            ids, arrays = predict_test(predictor, manifest, waveforms)
            pooled[name]["ids"] += ids
            pooled[name]["arrays"].append(arrays)
            times[name].append(seconds)
            truth = songs.set_index("track_id").loc[ids, "genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))})
            acc = float((arrays["class_probs"].argmax(1) == truth.to_numpy()).mean())
            print(f"fold {k} {name}: accuracy {acc:.3f}, train {seconds:.0f} s", flush=True)

    report = summarise(songs, votes, pooled, times)
    print(format_table(report))
    if args.predictions:
        write_predictions(args.predictions, pooled)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


def write_predictions(path: Path, pooled: dict) -> None:
    """One row per model and held-out song: genre probabilities, emotion rates, appeal."""
    frames = []
    for name, got in pooled.items():
        if not got["ids"]:
            continue
        arrays = {k: np.concatenate([a[k] for a in got["arrays"]]) for k in got["arrays"][0]}
        frame = pd.DataFrame({"model": name, "track_id": got["ids"]})
        for j, genre in enumerate(sorted(GENRE_OFFSETS)):
            frame[f"p_{genre}"] = arrays["class_probs"][:, j]
        for j, emotion in enumerate(EMOTIONS):
            frame[emotion] = arrays["tag_probs"][:, j]
        frame["appeal"] = arrays["scores"][:, 0]
        frames.append(frame)
    pd.concat(frames).to_csv(path, index=False)


def summarise(songs: pd.DataFrame, votes: pd.DataFrame, pooled: dict, times: dict) -> dict:
    label_names = sorted(GENRE_OFFSETS)
    by_id = songs.set_index("track_id")
    targets = EMOTIONS + ["appeal"]
    ceilings = {t: split_half_ceiling(votes, t) for t in targets}
    report: dict = {"targets": {t: {"reliability": r, "ceiling": c} for t, (r, c) in ceilings.items()}, "models": {}}
    preds: dict[str, dict] = {}
    for name, got in pooled.items():
        if not got["ids"]:
            continue
        ids = got["ids"]
        arrays = {k: np.concatenate([a[k] for a in got["arrays"]]) for k in got["arrays"][0]}
        order = np.argsort(np.array(ids, dtype=int))
        ids = [ids[i] for i in order]
        arrays = {k: v[order] for k, v in arrays.items()}
        truth = by_id.loc[ids, "genre"].map({g: i for i, g in enumerate(label_names)}).to_numpy()
        pred = arrays["class_probs"].argmax(1)
        acc = bootstrap_ci(lambda y, p: float((y == p).mean()), truth, pred)
        rho = {e: float(spearmanr(arrays["tag_probs"][:, j], by_id.loc[ids, e]).statistic) for j, e in enumerate(EMOTIONS)}
        rho["appeal"] = float(spearmanr(arrays["scores"][:, 0], by_id.loc[ids, "appeal"]).statistic)
        report["models"][name] = {"n_songs": len(ids), "accuracy": acc, "spearman": rho,
                                  "train_seconds": times[name], "mean_train_seconds": float(np.mean(times[name]))}
        preds[name] = {"ids": ids, "truth": truth, "pred": pred, "arrays": arrays}
    if "cnn" in preds and "rf" in preds and preds["cnn"]["ids"] == preds["rf"]["ids"]:
        c, r = preds["cnn"], preds["rf"]
        report["cnn_minus_rf"] = {"accuracy": compare_paired(c["truth"], c["pred"], r["pred"], "accuracy")}
        for j, target in enumerate(EMOTIONS + ["appeal"]):  # paired bootstrap of each Spearman difference
            key, col = ("scores", 0) if target == "appeal" else ("tag_probs", j)
            truth = by_id.loc[c["ids"], target].to_numpy(dtype=np.float64)
            report["cnn_minus_rf"][target] = compare_paired(truth, c["arrays"][key][:, col], r["arrays"][key][:, col], "spearman")
    return report


def format_table(report: dict) -> str:
    targets = EMOTIONS + ["appeal"]
    lines = ["| model | songs | accuracy [95 % CI] | " + " | ".join(targets) + " | train s/fold |",
             "| --- | --- | --- | " + " | ".join("---" for _ in targets) + " | --- |"]
    for name, m in report["models"].items():
        acc = m["accuracy"]
        cells = " | ".join(f"{m['spearman'][t]:.2f}" for t in targets)
        lines.append(f"| {name} | {m['n_songs']} | {acc['value']:.3f} [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}] | {cells} | "
                     f"{m['mean_train_seconds']:.0f} |")
    cells = " | ".join(f"{report['targets'][t]['ceiling']:.2f}" for t in targets)
    lines.append(f"| ceiling (sqrt split-half reliability) | | | {cells} | |")
    if "cnn_minus_rf" in report:
        d = report["cnn_minus_rf"]["accuracy"]
        lines.append(f"\nCNN - RF accuracy: {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
        spread = [f"{t} {report['cnn_minus_rf'][t]['difference']:+.2f} [{report['cnn_minus_rf'][t]['ci_low']:+.2f}, "
                  f"{report['cnn_minus_rf'][t]['ci_high']:+.2f}]" for t in targets if t in report["cnn_minus_rf"]]
        if spread:
            lines.append("CNN - RF Spearman (paired bootstrap, 95 %): " + "; ".join(spread))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
