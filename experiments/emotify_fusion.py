"""Late fusion on Emotify: the frozen musicnn pair's probe and the classical soft vote, averaged (issues 21, 23).

Usage:
    PYTHONPATH=src python experiments/emotify_fusion.py --inner 5 [--out experiments/emotify_fusion_inner.json]
    PYTHONPATH=src python experiments/emotify_fusion.py --inner 3 --vote ensemble_v2_segments \
        --out experiments/emotify_fusion_segments_inner.json      # 2026-12-07: the vote on 10-s segments
    PYTHONPATH=src python experiments/emotify_fusion.py --heldout --vote ensemble_v2_segments --fused fused_25 \
        --out experiments/emotify_fusion_segments.json           # its one held-out run

Two models that see different things: the probe reads what musicnn learnt from a million
songs (the mean embedding of musicnn-msd and musicnn-mtt side by side, as ``encore train
--init-from pretrained:musicnn-msd --init-from pretrained:musicnn-mtt --freeze-backbone``),
the classical vote (``baseline.estimator: ensemble``, the forest and the SVM) reads 145
handcrafted features. ``fused`` is the equal-weight mean of their predictions: the genre
probabilities, the nine emotions' predicted vote shares and the predicted appeal. No
weight is tuned.

The folds are the classical and CNN studies' (``emotify_history.fold_splits``, no
validation share: 5 genre-stratified folds, ``random_state`` = the seed, seeds 0-2).

Inside each outer fold's 320 training songs, ``--inner`` stratified inner folds; every
candidate predicts the inner held-out songs, pooled over the inner folds, and is scored on
them. The outer test songs are never read. ``--heldout --fused NAME`` is the pre-registered
held-out run of the candidate the inner folds kept (2026-12-07: the vote on segments at
weight 0.25): every outer fold's models on its test songs, pooled per seed, paired against
the probe.

The handcrafted features come from ``emotify_classical.py``'s cache (``--cache``); the
embeddings from ``~/.cache/encore/embeddings`` (``encore pretrained convert musicnn-msd``
and ``musicnn-mtt`` first).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_classical import (  # noqa: E402
    TARGETS,
    VARIANTS,
    _fold_metrics,
    ahead_by_fold,
    baseline_config,
    columns_of,
    load_features,
    run_fold,
    segment_rows,
)
from emotify_history import GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402
from emotify_probe_targets import embed_side_by_side, paired, probe_fold  # noqa: E402

from encore.config import load_config  # noqa: E402
from encore.features.cache import FeatureCache  # noqa: E402
from encore.features.handcrafted import handcrafted_feature_names  # noqa: E402

logger = logging.getLogger("emotify_fusion")
PAIR = "pretrained:musicnn-msd,pretrained:musicnn-mtt"
FUSIONS = {"ensemble_v2": {"fused": 0.5}, "ensemble_v2_segments": {"fused_25": 0.25, "fused_50": 0.5}}
"""The vote each study fuses with the probe -> the fused candidates and the vote's weight in each (2026-12-06; 2026-12-07)."""


def predict_all(embeddings, features, songs, y, train, test, config, seed: int, n_jobs: int, vote_name: str, owner=None) -> dict:
    """Each candidate fitted on ``train``: its class probabilities, emotion shares and appeal for ``test``.

    ``features`` are one row a song, or one a segment with ``owner`` (each row's song) for a vote on segments.
    """
    probe = probe_fold(embeddings, songs, y, train, test, seed)
    feature_set, overrides = VARIANTS[vote_name]
    cols = columns_of(feature_set)
    names = handcrafted_feature_names()
    bc = baseline_config(config, {**overrides, "seed": seed}, n_jobs)
    vote, _ = run_fold(features[:, cols], songs, train, test, bc, [names[c] for c in cols], owner=owner)
    out = {
        "probe": {"class_probs": probe["class_probs"], "tag_probs": probe["emotions"], "scores": probe["appeal"][:, None]},
        "vote": vote,
    }
    for name, weight in FUSIONS[vote_name].items():
        out[name] = {key: (1.0 - weight) * out["probe"][key] + weight * vote[key] for key in vote}
    return out


def _place(arrays: dict, out: dict, rows: np.ndarray, n_songs: int) -> None:
    for name, predicted in out.items():
        for key, value in predicted.items():
            arrays.setdefault(name, {}).setdefault(key, np.zeros((n_songs,) + value.shape[1:]))[rows] = value


def run_inner(args, songs, y, embeddings, features, config, owner=None) -> dict:
    from sklearn.model_selection import StratifiedKFold

    candidates = ("probe", "vote", *FUSIONS[args.vote])
    per_fold: dict = {c: [] for c in candidates}
    for seed in args.seeds:
        for k, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            arrays: dict = {}
            t0 = time.perf_counter()
            for inner_train, inner_test in StratifiedKFold(args.inner, shuffle=True, random_state=seed).split(train, y[train]):
                out = predict_all(
                    embeddings,
                    features,
                    songs,
                    y,
                    train[inner_train],
                    train[inner_test],
                    config,
                    seed,
                    args.n_jobs,
                    args.vote,
                    owner,
                )
                _place(arrays, out, train[inner_test], len(songs))
            for name in candidates:
                per_fold[name].append({"seed": seed, "fold": k, **_fold_metrics(songs, arrays[name], train)})
            logger.info(
                "seed %d fold %d (%.0f s): %s",
                seed,
                k,
                time.perf_counter() - t0,
                ", ".join(
                    f"{n} {per_fold[n][-1]['accuracy']:.3f}/{per_fold[n][-1]['emotions_mean']:.3f}/{per_fold[n][-1]['appeal']:.3f}"
                    for n in candidates
                ),
            )
    keys = ["accuracy", "emotions_mean", *TARGETS]
    report = {
        "inner_folds": args.inner,
        "per_fold": per_fold,
        "mean": {n: {key: float(np.mean([r[key] for r in rows])) for key in keys} for n, rows in per_fold.items()},
        "fused_minus": {
            f"{fused} - {other}": ahead_by_fold(per_fold[fused], per_fold[other])
            for fused in FUSIONS[args.vote]
            for other in ("probe", "vote")
        },
    }
    lines = ["| candidate | accuracy | emotions' mean | appeal |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {m['accuracy']:.3f} | {m['emotions_mean']:.3f} | {m['appeal']:.3f} |" for n, m in report["mean"].items()]
    for other, diff in report["fused_minus"].items():
        lines.append(
            f"{other}: "
            + "; ".join(f"{k} {d['mean']:+.3f} ({d['folds_ahead']}/{d['n_folds']} folds ahead)" for k, d in diff.items())
        )
    print("\n".join(lines), flush=True)
    return report


def run_heldout(args, songs, y, embeddings, features, config, owner=None) -> dict:
    """The pre-registered held-out run: each outer fold's model on its test songs, pooled per seed, paired against the probe."""
    candidates = ("probe", "vote", args.fused)
    stacked: dict = {c: {"classes": [], "scores": []} for c in candidates}
    per_seed: dict = {c: [] for c in candidates}
    seconds = []
    for seed in args.seeds:
        arrays: dict = {}
        for k, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            t0 = time.perf_counter()
            out = predict_all(embeddings, features, songs, y, train, test, config, seed, args.n_jobs, args.vote, owner)
            _place(arrays, {c: out[c] for c in candidates}, test, len(songs))
            seconds.append(time.perf_counter() - t0)
            logger.info("seed %d fold %d: %.0f s", seed, k, seconds[-1])
        for c in candidates:
            stacked[c]["classes"].append(arrays[c]["class_probs"].argmax(1))
            stacked[c]["scores"].append(np.concatenate([arrays[c]["tag_probs"], arrays[c]["scores"]], axis=1))
            per_seed[c].append({"seed": seed, **_fold_metrics(songs, arrays[c], np.arange(len(songs)))})
    stacked = {c: {key: np.stack(v) for key, v in d.items()} for c, d in stacked.items()}
    keys = ["accuracy", "emotions_mean", *TARGETS]
    report = {
        "fused": args.fused,
        "vote_weight": FUSIONS[args.vote][args.fused],
        "mean": {c: {key: float(np.mean([r[key] for r in rows])) for key in keys} for c, rows in per_seed.items()},
        "sd": {c: {key: float(np.std([r[key] for r in rows])) for key in keys} for c, rows in per_seed.items()},
        "per_seed": per_seed,
        "paired_minus_probe": {c: paired(songs, y, stacked[c], stacked["probe"]) for c in (args.fused, "vote")},
        "seconds_per_fold": {"mean": float(np.mean(seconds)), "max": float(np.max(seconds))},
    }
    lines = ["| candidate | accuracy (per seed) | emotions' mean | appeal |", "| --- | --- | --- | --- |"]
    for c in candidates:
        m, sd = report["mean"][c], report["sd"][c]
        per = ", ".join(f"{r['accuracy']:.3f}" for r in per_seed[c])
        lines.append(
            f"| {c} | {m['accuracy']:.3f} ± {sd['accuracy']:.3f} ({per}) | {m['emotions_mean']:.3f} ± {sd['emotions_mean']:.3f} "
            f"| {m['appeal']:.3f} ± {sd['appeal']:.3f} |"
        )
    for c, diff in report["paired_minus_probe"].items():
        lines.append(
            f"{c} - probe (paired bootstrap over songs, seed-averaged, 95 %): "
            + "; ".join(f"{k} {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" for k, d in diff.items())
        )
    print("\n".join(lines), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/encore-classical-cache"))
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--inner", type=int, default=5, help="inner folds in each outer training fold")
    parser.add_argument("--vote", default="ensemble_v2", choices=sorted(FUSIONS), help="the classical vote fused with the probe")
    parser.add_argument("--heldout", action="store_true", help="the pre-registered held-out run of --fused (not --inner)")
    parser.add_argument("--fused", default=None, help="with --heldout: the fused candidate the inner folds kept, e.g. fused_25")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_fusion_inner.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = load_config(args.config, [])
    songs, _ = read_targets(args.data)
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    decoded, features = load_features(songs, config, FeatureCache(args.cache))
    owner = None
    seconds = VARIANTS[args.vote][1].get("segment_seconds")
    if seconds:  # the vote on segments: one row a segment, from the same cache
        features, owner = segment_rows(decoded, config, seconds, FeatureCache(args.cache))
    t0 = time.perf_counter()
    embeddings = embed_side_by_side(songs, PAIR)
    logger.info("embeddings of %d songs (%d dims) in %.0f s", len(songs), embeddings.shape[1], time.perf_counter() - t0)
    if args.heldout:
        if args.fused not in FUSIONS[args.vote]:
            raise SystemExit(f"--heldout needs --fused, one of {sorted(FUSIONS[args.vote])}")
        result = run_heldout(args, songs, y, embeddings, features, config, owner)
    else:
        result = run_inner(args, songs, y, embeddings, features, config, owner)
    report = {"command": "python " + " ".join(sys.argv), **result}
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
