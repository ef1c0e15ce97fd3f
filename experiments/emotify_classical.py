"""Emotify cross-validation of the classical models: the old forest against the new
feature set, selection by importance and gradient boosting (issue 23).

Usage:
    python experiments/emotify_classical.py [--data ../shared/data/emotify] [--seeds 0,1,2] [--folds 5]
                                            [--extract-only] [--out experiments/emotify_classical.json]

The folds are experiments/emotify_cv.py's (the CNNs'): stratified by genre, ``--seed`` s
gives ``StratifiedKFold(5, shuffle=True, random_state=s)``, no validation songs (every
classical model trains on all of a fold's 320 training songs). Features are computed once
per song into the feature cache, so the 3 seeds x 5 folds only fit models. Every setting a
model picks (features kept, boosting iterations) is picked by inner cross-validation on
the fold's training songs; the held-out fold is only predicted. Predictions are pooled
over each seed's 5 folds (400 songs) and the paired bootstrap differences against the old
forest are averaged over the seeds' pooled predictions (see ``summarise``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import functools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from encore.config import BaselineConfig, load_config
from encore.data.waveforms import load_waveforms
from encore.features.cache import FeatureCache
from encore.features.handcrafted import handcrafted_feature_names
from encore.features.extract import compute_feature_matrix, compute_feature_rows
from encore.inference.baseline import song_means
from encore.train.baseline import fit_head
from encore.train.objectives import select_split, target_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, GENRE_OFFSETS, fold_splits, make_manifest, read_targets  # noqa: E402 - the sibling study's folds

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("emotify_classical")


def load_features(songs: pd.DataFrame, config, cache: FeatureCache) -> tuple[dict, np.ndarray]:
    """Decode every song once and compute (or read) its handcrafted features."""
    t0 = time.perf_counter()
    decoded, failures = load_waveforms(list(songs["path"]), sample_rate=config.features.sample_rate, cache=cache)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    logger.info("decoded %d songs in %.0f s", len(decoded), time.perf_counter() - t0)
    t0 = time.perf_counter()
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 20 == 0:
            logger.info("features: %d/%d songs, %.0f s", done[0], len(decoded), time.perf_counter() - t0)

    bc = config.baseline
    features = compute_feature_matrix(
        decoded, sample_rate=config.features.sample_rate, n_fft=bc.n_fft, hop_length=bc.hop_length, cache=cache, callback=tick
    )
    logger.info("features of %d songs in %.0f s", len(features), time.perf_counter() - t0)
    return dict(zip(songs["track_id"], decoded, strict=True)), features


def segment_rows(decoded: dict, config, seconds: float, cache: FeatureCache) -> tuple[np.ndarray, np.ndarray]:
    """Every song's segments of ``seconds`` (at most ``baseline.max_segments``) summarised as the product does, and each one's song."""
    bc = config.baseline
    return compute_feature_rows(
        list(decoded.values()),
        sample_rate=config.features.sample_rate,
        n_fft=bc.n_fft,
        hop_length=bc.hop_length,
        segment_seconds=seconds,
        max_segments=bc.max_segments,
        cache=cache,
    )


STANDARD = (
    [f"mfcc_{i:02d}_{s}" for s in ("mean", "std") for i in range(20)]
    + [f"chroma_{p}_mean" for p in ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")]
    + [f"spectral_contrast_{b}_mean" for b in range(7)]
    + [
        f"{f}_{s}"
        for f in ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "zero_crossing_rate", "rms")
        for s in ("mean", "std")
    ]
    + ["tempo_bpm"]
)
"""librosa's standard clip summary, as the issue describes it, picked from encore's vector (70 columns)."""

WIDE_SVM = {"c_grid": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0], "gamma_scales": [0.1, 0.3, 1.0, 3.0]}
"""baseline.svm's grids with one more step at each edge of C and one below the kernel widths."""

VARIANTS = {  # name: (feature set, overrides of the baseline settings)
    "forest_v1": ("v1", {}),  # the old forest: 500 trees on version 1's 92 features
    "forest_standard": ("standard", {}),
    "forest_v2": ("v2", {}),
    "forest_v2_selected": ("v2", {"selection": {"enabled": True}}),
    "boosting_v2": ("v2", {"estimator": "gradient_boosting"}),
    "boosting_v2_selected": ("v2", {"estimator": "gradient_boosting", "selection": {"enabled": True}}),
    # added 2026-12-04 (second session), its grids fixed before its one run: baseline.svm's defaults
    "svm_v2": ("v2", {"estimator": "svm"}),
    # added 2026-12-06: the soft vote of the forest and the SVM (baseline.ensemble's defaults), chosen on inner folds
    "ensemble_v2": ("v2", {"estimator": "ensemble"}),
    # added 2026-12-06 (pre-registered in experiments/README.md): the SVM's grids widened by one step at each edge
    "svm_v2_wide": ("v2", {"estimator": "svm", "svm": WIDE_SVM}),
    "ensemble_v2_wide": ("v2", {"estimator": "ensemble", "svm": WIDE_SVM}),
    # added 2026-12-06 (pre-registered in experiments/README.md): the product's bag of 10-s segments
    "forest_v2_segments": ("v2", {"segment_seconds": 10.0}),
    "ensemble_v2_segments": ("v2", {"estimator": "ensemble", "segment_seconds": 10.0}),
    # added 2026-12-06 (pre-registered in experiments/README.md): the tag and score heads weighted by their evidence
    "ensemble_v2_segments_evidence": (
        "v2",
        {"estimator": "ensemble", "segment_seconds": 10.0, "target_weighting": "evidence"},
    ),
    # added 2026-12-07 (pre-registered in experiments/README.md): the score head on the normal scores of its ranks
    "ensemble_v2_segments_normal": (
        "v2",
        {"estimator": "ensemble", "segment_seconds": 10.0, "score_transform": "normal_scores"},
    ),
}
VOTES = {  # inner-fold study only: the vote's predictions as the equal-weight mean of its members' own
    "vote_forest_svm": ("forest_v2", "svm_v2"),
    "vote_forest_svm_boosting": ("forest_v2", "svm_v2", "boosting_v2"),
    "vote_forest_svm_wide": ("forest_v2", "svm_v2_wide"),
}
CHALLENGES = {
    "svm_v2_wide": "svm_v2",
    "vote_forest_svm_wide": "vote_forest_svm",
    "ensemble_v2_segments_evidence": "ensemble_v2_segments",
    "ensemble_v2_segments_normal": "ensemble_v2_segments",
}
"""Inner-fold comparisons beside the votes against their members: a candidate against what it would replace."""
TARGETS = EMOTIONS + ["appeal"]


def columns_of(feature_set: str) -> np.ndarray:
    names = handcrafted_feature_names()
    if feature_set == "v1":
        return np.arange(92)
    if feature_set == "standard":
        return np.array([names.index(n) for n in STANDARD])
    return np.arange(len(names))


def baseline_config(config, overrides: dict, n_jobs: int):
    data = config.baseline.model_dump()
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    data["n_jobs"] = n_jobs
    return BaselineConfig(**data)


def evidence_of(songs: pd.DataFrame, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``baseline.target_weighting: evidence``'s weights when the songs ``train`` are the training songs.

    The product's own path: the study's manifest (appeal_sd from the votes' spread,
    tag_support the number of votes), ``select_split`` and ``target_weights``. Returns one
    weight a song (0 outside ``train``) for the tag model (the mean of its tags' weights, as
    a multi-output model takes) and one for the appeal model.
    """
    splits = np.full(len(songs), "test", dtype=object)
    splits[train] = "train"
    decoded = dict.fromkeys(songs["track_id"], np.zeros(1, np.float32))  # the weights need no audio; every song "decoded"
    tag_w, score_w = target_weights(select_split(make_manifest(songs, splits), "train", decoded), "evidence")
    tag, appeal = np.zeros(len(songs)), np.zeros(len(songs))
    tag[np.sort(train)], appeal[np.sort(train)] = tag_w.mean(axis=1), score_w.mean(axis=1)  # the split keeps the songs' order
    return tag, appeal


def run_fold(
    X: np.ndarray,
    songs: pd.DataFrame,
    train: np.ndarray,
    test: np.ndarray,
    bc,
    names: list[str],
    owner: np.ndarray | None = None,
    heads: tuple[str, ...] = ("classifier", "tagger", "regressor"),
) -> tuple[dict, dict]:
    """Fit the heads on the fold's training songs (as fit_baseline does) and predict its test songs.

    With ``owner`` (each row's song) the rows of ``X`` are segments: the heads train on the
    training songs' segments, their inner folds grouped by song, and a test song is the
    mean of its segments' predictions (as BaselinePredictor serves it). With
    ``bc.target_weighting == "evidence"`` the tag and appeal heads weigh each row by its
    song's evidence (:func:`evidence_of`). ``heads`` leaves out heads a study does not
    compare (a head left out predicts NaN).
    """
    genre_index = {g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}
    classes = songs["genre"].map(genre_index).to_numpy()
    owner = np.arange(len(songs)) if owner is None else owner
    fit_rows, test_rows = np.flatnonzero(np.isin(owner, train)), np.flatnonzero(np.isin(owner, test))
    groups = None if len(owner) == len(songs) else owner[fit_rows]
    slot = np.full(len(songs), -1)
    slot[test] = np.arange(len(test))
    per_song = functools.partial(song_means, owner=slot[owner[test_rows]], n_songs=len(test))  # in the order of ``test``

    kw = {"names": names, "groups": groups}
    X_fit, X_test, songs_fit = X[fit_rows], X[test_rows], owner[fit_rows]
    tag_weight = appeal_weight = None
    if bc.target_weighting == "evidence":
        tag_w, appeal_w = evidence_of(songs, train)
        tag_weight, appeal_weight = tag_w[songs_fit], appeal_w[songs_fit]
    out, info = {}, {}
    out["class_probs"] = np.full((len(test), len(GENRE_OFFSETS)), np.nan)
    out["tag_probs"] = np.full((len(test), len(EMOTIONS)), np.nan)
    out["scores"] = np.full((len(test), 1), np.nan)
    if "classifier" in heads:
        model, info["classifier"] = fit_head(X_fit, classes[songs_fit], bc, classification=True, **kw)
        out["class_probs"] = per_song(model.predict_proba(X_test))
    if "tagger" in heads:
        tags = songs[EMOTIONS].to_numpy()[songs_fit]
        model, info["tagger"] = fit_head(X_fit, tags, bc, classification=False, sample_weight=tag_weight, **kw)
        out["tag_probs"] = np.clip(per_song(model.predict(X_test)), 0, 1)
    if "regressor" in heads:
        appeal = songs["appeal"].to_numpy()[songs_fit]
        model, info["regressor"] = fit_head(
            X_fit, appeal, bc, classification=False, sample_weight=appeal_weight, transform=bc.score_transform, **kw
        )
        out["scores"] = per_song(model.predict(X_test))
    for head in info.values():  # the JSON keeps what was chosen, not every column index and importance
        head.pop("importance", None)
        head.pop("columns", None)
        head.get("selection", {}).pop("importance", None)
    return out, info


def _ranks(a: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(a, axis=-1), axis=-1).astype(float)


def _spearman_rows(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Spearman of each row pair (ties broken by order; the data are continuous)."""
    rt, rp = _ranks(truth), _ranks(pred)
    rt -= rt.mean(-1, keepdims=True)
    rp -= rp.mean(-1, keepdims=True)
    return (rt * rp).sum(-1) / np.sqrt((rt**2).sum(-1) * (rp**2).sum(-1))


def paired_over_seeds(truth: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, *, n_boot: int = 1000) -> dict:
    """Paired bootstrap over songs of the seed-averaged ``metric(a) - metric(b)``.

    ``a`` and ``b`` are ``(n_seeds, n_songs)`` (class indices or scores); each resample
    draws songs once and scores every seed's predictions on them.
    """
    rng = np.random.default_rng(0)

    def value(idx: np.ndarray) -> float:
        if metric == "accuracy":
            return float((a[:, idx] == truth[idx]).mean() - (b[:, idx] == truth[idx]).mean())
        t = np.broadcast_to(truth[idx], a[:, idx].shape)
        return float(_spearman_rows(t, a[:, idx]).mean() - _spearman_rows(t, b[:, idx]).mean())

    full = value(np.arange(len(truth)))
    boots = np.array([value(rng.integers(0, len(truth), len(truth))) for _ in range(n_boot)])
    low, high = np.percentile(boots, [2.5, 97.5])
    return {"difference": full, "ci_low": float(low), "ci_high": float(high)}


def summarise(songs: pd.DataFrame, pooled: dict, times: dict, reference: str = "forest_v1") -> dict:
    truth_class = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    report: dict = {"models": {}, "minus_" + reference: {}}
    stacked = {}
    for name, seeds in pooled.items():
        classes = np.stack([s["class_probs"].argmax(1) for s in seeds])
        scores = {
            t: np.stack([s["scores"][:, 0] if t == "appeal" else s["tag_probs"][:, EMOTIONS.index(t)] for s in seeds])
            for t in TARGETS
        }
        stacked[name] = (classes, scores)
        report["models"][name] = {
            "n_seeds": len(seeds),
            "accuracy_per_seed": [float((c == truth_class).mean()) for c in classes],
            "spearman": {t: float(np.mean([spearmanr(v, songs[t]).statistic for v in scores[t]])) for t in TARGETS},
            "train_seconds_per_fold": times[name],
        }
        report["models"][name]["accuracy"] = float(np.mean(report["models"][name]["accuracy_per_seed"]))
    if reference in stacked:
        ref_classes, ref_scores = stacked[reference]
        for name, (classes, scores) in stacked.items():
            if name == reference or len(classes) != len(ref_classes):
                continue
            diff = {"accuracy": paired_over_seeds(truth_class, classes, ref_classes, "accuracy")}
            for t in TARGETS:
                diff[t] = paired_over_seeds(songs[t].to_numpy(float), scores[t], ref_scores[t], "spearman")
            report["minus_" + reference][name] = diff
    return report


def format_report(report: dict, reference: str = "forest_v1") -> str:
    lines = [
        "| model | seeds | accuracy (per seed) | " + " | ".join(TARGETS) + " | train s/fold (max) |",
        "| --- | --- | --- | " + " | ".join("---" for _ in TARGETS) + " | --- |",
    ]
    for name, m in report["models"].items():
        per_seed = ", ".join(f"{a:.3f}" for a in m["accuracy_per_seed"])
        cells = " | ".join(f"{m['spearman'][t]:.2f}" for t in TARGETS)
        t = m["train_seconds_per_fold"]
        lines.append(
            f"| {name} | {m['n_seeds']} | {m['accuracy']:.3f} ({per_seed}) | {cells} | {np.mean(t):.0f} ({np.max(t):.0f}) |"
        )
    for name, diff in report.get("minus_" + reference, {}).items():
        parts = [f"{k} {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" for k, d in diff.items()]
        ahead = sum(diff[e]["difference"] > 0 for e in EMOTIONS)
        lines.append(
            f"\n{name} - {reference} (paired bootstrap over songs, seed-averaged, 95 %; ahead on {ahead}/9 emotions): "
            + "; ".join(parts)
        )
    return "\n".join(lines)


def _fold_metrics(songs: pd.DataFrame, arrays: dict, rows: np.ndarray) -> dict:
    """Accuracy and each target's Spearman on the songs ``rows`` of pooled predictions."""
    truth = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    probs = arrays["class_probs"][rows]
    out = {"accuracy": float((probs.argmax(1) == truth[rows]).mean()) if np.isfinite(probs).all() else float("nan")}
    for t in TARGETS:
        pred = arrays["scores"][rows, 0] if t == "appeal" else arrays["tag_probs"][rows, EMOTIONS.index(t)]
        out[t] = float(spearmanr(pred, songs[t].to_numpy()[rows]).statistic)
    out["emotions_mean"] = float(np.mean([out[e] for e in EMOTIONS]))
    return out


def ahead_by_fold(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Candidate a against b on the same inner-fold rows: the mean difference and how many folds a is ahead."""
    return {
        key: {
            "mean": float(np.mean([x[key] - y[key] for x, y in zip(rows_a, rows_b, strict=True)])),
            "folds_ahead": int(sum(x[key] > y[key] for x, y in zip(rows_a, rows_b, strict=True))),
            "n_folds": len(rows_a),
        }
        for key in ("accuracy", "emotions_mean", "appeal")
    }


def run_inner(args, songs: pd.DataFrame, features: np.ndarray, config, models: list[str], rows: dict) -> None:
    """Inner cross-validation inside each outer fold's training songs; the outer test songs are never read.

    Each outer fold's 320 training songs are split by ``StratifiedKFold(args.inner, shuffle=True,
    random_state=seed)`` on genre; every candidate is fitted on the inner training songs and
    predicts the inner held-out ones, pooled over the inner folds (320 songs). The votes in
    ``VOTES`` average their members' pooled predictions (equal weights, as ``SoftVote``).
    Segment-level candidates read their segments' rows (``rows``, by segment length), as
    the held-out run does. ``args.heads`` limits the heads fitted (a study of the tag and
    score heads need not fit the class head its candidates share).
    """
    from sklearn.model_selection import StratifiedKFold

    heads = tuple(args.heads.split(","))
    names = handcrafted_feature_names()
    votes = {v: members for v, members in VOTES.items() if set(members) <= set(models)}
    per_fold: dict = {m: [] for m in [*models, *votes]}
    genres = songs["genre"].to_numpy()
    for seed in (int(s) for s in args.seeds.split(",")):
        for k, splits in enumerate(fold_splits(songs, args.folds, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            arrays: dict = {m: {} for m in models}
            inner = StratifiedKFold(args.inner, shuffle=True, random_state=seed).split(train, genres[train])
            for inner_train, inner_test in inner:
                for name in models:
                    feature_set, overrides = VARIANTS[name]
                    cols = columns_of(feature_set)
                    bc = baseline_config(config, {**overrides, "seed": seed}, args.n_jobs)
                    X, owner = rows.get(overrides.get("segment_seconds"), (features, None))
                    out, _ = run_fold(
                        X[:, cols], songs, train[inner_train], train[inner_test], bc, [names[c] for c in cols], owner, heads
                    )
                    for key, value in out.items():
                        arrays[name].setdefault(key, np.zeros((len(songs),) + value.shape[1:]))[train[inner_test]] = value
            for vote, members in votes.items():
                arrays[vote] = {key: np.mean([arrays[m][key] for m in members], axis=0) for key in arrays[members[0]]}
            for name, pooled in arrays.items():
                per_fold[name].append({"seed": seed, "fold": k, **_fold_metrics(songs, pooled, train)})
            logger.info(
                "seed %d fold %d: %s",
                seed,
                k,
                ", ".join(
                    f"{n} {per_fold[n][-1]['accuracy']:.3f}/{per_fold[n][-1]['emotions_mean']:.3f}/{per_fold[n][-1]['appeal']:.3f}"
                    for n in per_fold
                ),
            )
        report = {"command": "python " + " ".join(sys.argv), "inner_folds": args.inner, "per_fold": per_fold, "mean": {}}
        keys = ["accuracy", "emotions_mean", *TARGETS]
        for name, fold_rows in per_fold.items():
            report["mean"][name] = {key: float(np.mean([r[key] for r in fold_rows])) for key in keys}
        pairs = [(a, b) for a in votes for b in per_fold if a != b]
        pairs += [(a, b) for a, b in CHALLENGES.items() if a in per_fold and b in per_fold]
        report["ahead"] = {f"{a} - {b}": ahead_by_fold(per_fold[a], per_fold[b]) for a, b in pairs}
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        lines = ["| candidate | accuracy | emotions' mean | appeal |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {n} | {m['accuracy']:.3f} | {m['emotions_mean']:.3f} | {m['appeal']:.3f} |" for n, m in report["mean"].items()
        ]
        lines += [
            f"{pair}: "
            + "; ".join(f"{k} {d['mean']:+.3f} ({d['folds_ahead']}/{d['n_folds']} folds ahead)" for k, d in diff.items())
            for pair, diff in report["ahead"].items()
        ]
        print(f"after seed {seed}:\n" + "\n".join(lines), flush=True)


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The classical studies' shared options: the data, the config, the feature cache, the seeds."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/encore-classical-cache"))
    parser.add_argument("--seeds", default="0,1,2")
    return parser


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--models", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--n-jobs", type=int, default=2, help="forest threads (the bar is 2 cores)")
    parser.add_argument("--extract-only", action="store_true")
    parser.add_argument("--reference", default="forest_v1", help="the model every other is compared with (paired)")
    parser.add_argument("--only-folds", default=None, help="comma-separated fold numbers (a timing run; no summary)")
    parser.add_argument(
        "--inner",
        type=int,
        default=0,
        help="inner CV folds inside each outer fold's training songs (0: score the held-out folds)",
    )
    parser.add_argument(
        "--heads",
        default="classifier,tagger,regressor",
        help="with --inner: the heads fitted, comma-separated (those left out score NaN)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_classical.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = load_config(args.config, [])
    songs, _ = read_targets(args.data)
    decoded, features = load_features(songs, config, FeatureCache(args.cache))
    models = args.models.split(",")
    segmented = {VARIANTS[m][1]["segment_seconds"] for m in models if "segment_seconds" in VARIANTS[m][1]}
    rows = {}  # segment length -> (the segments' features, each one's song)
    for seconds in sorted(segmented):
        t0 = time.perf_counter()
        rows[seconds] = segment_rows(decoded, config, seconds, FeatureCache(args.cache))
        logger.info("%d segments of %g s in %.0f s", len(rows[seconds][1]), seconds, time.perf_counter() - t0)
    if args.extract_only:
        return
    names = handcrafted_feature_names()
    if args.inner:
        run_inner(args, songs, features, config, models, rows)
        return
    pooled: dict = {m: [] for m in models}
    times: dict = {m: [] for m in models}
    cpu: dict = {m: [] for m in models}
    selections: dict = {m: [] for m in models}
    for seed in (int(s) for s in args.seeds.split(",")):
        arrays = {m: {} for m in models}
        for k, splits in enumerate(fold_splits(songs, args.folds, seed, val_fraction=0.0)):
            if args.only_folds and str(k) not in args.only_folds.split(","):
                continue
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            for name in models:
                feature_set, overrides = VARIANTS[name]
                cols = columns_of(feature_set)
                bc = baseline_config(config, {**overrides, "seed": seed}, args.n_jobs)
                t0, c0 = time.perf_counter(), time.process_time()
                X, owner = rows.get(overrides.get("segment_seconds"), (features, None))
                out, info = run_fold(X[:, cols], songs, train, test, bc, [names[c] for c in cols], owner)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                selections[name].append({"seed": seed, "fold": k, **info})
                for key, value in out.items():
                    arrays[name].setdefault(key, np.zeros((len(songs),) + value.shape[1:]))[test] = value
                acc = float(
                    (
                        out["class_probs"].argmax(1)
                        == songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()[test]
                    ).mean()
                )
                kept = {h: e["selection"]["n_kept"] for h, e in info.items() if "selection" in e}
                logger.info(
                    "seed %d fold %d %s: accuracy %.3f, %.0f s (%.0f s of CPU)%s",
                    seed,
                    k,
                    name,
                    acc,
                    times[name][-1],
                    cpu[name][-1],
                    f", kept {kept}" if kept else "",
                )
        if args.only_folds:
            continue
        for name in models:
            pooled[name].append(arrays[name])
        report = summarise(songs, pooled, times, reference=args.reference)
        report["selections"] = selections
        report["command"] = "python " + " ".join(sys.argv)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"after seed {seed}:\n" + format_report(report, reference=args.reference), flush=True)


if __name__ == "__main__":
    main()
