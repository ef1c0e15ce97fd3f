"""Two screens of the song-level forest's appeal on inner folds only (issue 23).

Usage:
    PYTHONPATH=src python experiments/emotify_appeal_screens.py chain [--seeds 0,1,2]
    PYTHONPATH=src python experiments/emotify_appeal_screens.py forest [--seeds 0,1,2]

Both run inside the 15 outer training folds of ``emotify_classical.py`` (3 inner folds of
each, stratified by genre); the outer held-out songs are never read. Features come from
that study's cache (145 features a song).

- ``chain``: appeal directly, against appeal stacked on out-of-fold forest predictions of
  the nine emotions (and the four genre probabilities), a ridge on those predictions
  alone, and the mean of the direct forest and that ridge.
- ``forest``: the forest's ``min_samples_leaf`` and ``max_features``, and the appeal
  target as the normal scores of its ranks.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm, rankdata, spearmanr
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from encore.config import load_config
from encore.features.cache import FeatureCache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_classical import load_features, study_parser  # noqa: E402 - the sibling study's features
from emotify_history import EMOTIONS, GENRE_OFFSETS, fold_splits, read_targets  # noqa: E402

FOREST = {  # name: (min_samples_leaf, max_features, appeal as normal scores)
    "leaf1": (1, "sqrt", False),
    "leaf3": (3, "sqrt", False),
    "leaf5": (5, "sqrt", False),
    "leaf10": (10, "sqrt", False),
    "leaf5_mf033": (5, 0.33, False),
    "leaf1_rank": (1, "sqrt", True),
    "leaf5_rank": (5, "sqrt", True),
}
CHAIN = ("direct", "stack_X_E", "stack_X_EP", "ridge_EP", "avg_direct_ridge")


def forest(seed: int, *, regression: bool = True, leaf: int = 1, max_features: str | float = "sqrt"):
    if regression:
        return RandomForestRegressor(500, min_samples_leaf=leaf, max_features=max_features, n_jobs=2, random_state=seed)
    return RandomForestClassifier(500, class_weight="balanced", n_jobs=2, random_state=seed)


def normal_scores(y: np.ndarray) -> np.ndarray:
    return norm.ppf((rankdata(y) - 0.5) / len(y))


def chain_fold(X, T, G, A, tr, ho, seed, out) -> None:
    """Direct appeal against appeal read from out-of-fold predicted emotions and genre."""
    out["direct"][ho] = forest(seed).fit(X[tr], A[tr]).predict(X[ho])
    E_oof, P_oof = np.zeros((len(tr), T.shape[1])), np.zeros((len(tr), 4))
    for a, b in StratifiedKFold(5, shuffle=True, random_state=seed + 100).split(X[tr], G[tr]):
        E_oof[b] = forest(seed).fit(X[tr][a], T[tr][a]).predict(X[tr][b])
        P_oof[b] = forest(seed, regression=False).fit(X[tr][a], G[tr][a]).predict_proba(X[tr][b])
    E_ho = forest(seed).fit(X[tr], T[tr]).predict(X[ho])
    P_ho = forest(seed, regression=False).fit(X[tr], G[tr]).predict_proba(X[ho])
    out["stack_X_E"][ho] = forest(seed).fit(np.hstack([X[tr], E_oof]), A[tr]).predict(np.hstack([X[ho], E_ho]))
    out["stack_X_EP"][ho] = forest(seed).fit(np.hstack([X[tr], E_oof, P_oof]), A[tr]).predict(np.hstack([X[ho], E_ho, P_ho]))
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 11))).fit(np.hstack([E_oof, P_oof]), A[tr])
    out["ridge_EP"][ho] = ridge.predict(np.hstack([E_ho, P_ho]))


def forest_fold(X, T, G, A, tr, ho, seed, out, out_tags) -> None:
    """The forest's leaves and split features on appeal and the emotions; appeal as normal scores."""
    for name, (leaf, max_features, rank) in FOREST.items():
        model = forest(seed, leaf=leaf, max_features=max_features)
        out[name][ho] = model.fit(X[tr], normal_scores(A[tr]) if rank else A[tr]).predict(X[ho])
        if not rank:
            out_tags[name][ho] = model.fit(X[tr], T[tr]).predict(X[ho])


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("screen", choices=["chain", "forest"])
    args = parser.parse_args()
    config = load_config(args.config, [])
    songs, _ = read_targets(args.data)
    _, X = load_features(songs, config, FeatureCache(args.cache))
    T, A = songs[EMOTIONS].to_numpy(), songs["appeal"].to_numpy()
    G = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    names = CHAIN if args.screen == "chain" else tuple(FOREST)
    appeal_rows: dict = {n: [] for n in names}
    tag_rows: dict = {n: [] for n in names if args.screen == "forest" and not FOREST[n][2]}
    for seed in (int(s) for s in args.seeds.split(",")):
        for k, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            out = {n: np.zeros(len(songs)) for n in names}
            out_tags = {n: np.zeros((len(songs), len(EMOTIONS))) for n in tag_rows}
            for inner_train, inner_test in StratifiedKFold(3, shuffle=True, random_state=seed).split(train, G[train]):
                tr, ho = train[inner_train], train[inner_test]
                if args.screen == "chain":
                    chain_fold(X, T, G, A, tr, ho, seed, out)
                else:
                    forest_fold(X, T, G, A, tr, ho, seed, out, out_tags)
            if args.screen == "chain":  # the two rankers' mean, each standardised on the fold's songs
                z = {n: (out[n] - out[n][train].mean()) / out[n][train].std() for n in ("direct", "ridge_EP")}
                out["avg_direct_ridge"] = z["direct"] + z["ridge_EP"]
            for n in names:
                appeal_rows[n].append(spearmanr(out[n][train], A[train]).statistic)
            for n in tag_rows:
                tag_rows[n].append(
                    np.mean([spearmanr(out_tags[n][train, j], T[train, j]).statistic for j in range(len(EMOTIONS))])
                )
            print(seed, k, " ".join(f"{n} {appeal_rows[n][-1]:.3f}" for n in names), flush=True)
    first = names[0]
    for n in names:
        a, base = np.array(appeal_rows[n]), np.array(appeal_rows[first])
        line = f"{n}: appeal {a.mean():.3f} ({np.mean(a - base):+.3f}, ahead {(a > base).sum()}/{len(a)})"
        if n in tag_rows:
            e, eb = np.array(tag_rows[n]), np.array(tag_rows[first])
            line += f"; emotions {e.mean():.3f} ({np.mean(e - eb):+.3f}, ahead {(e > eb).sum()}/{len(e)})"
        print(line)


if __name__ == "__main__":
    main()
