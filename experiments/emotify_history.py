"""The Emotify cross-validation as the earlier ``emotify_cv.py`` dealt it, for the analysis scripts.

``experiments/emotify_cv.py`` now runs ``encore cv`` on an Emotify workspace (artist-grouped
folds from the product; Emotify names no artists, so each song is its own group). The
numbers in ``experiments/NOTES.md`` up to 2026-11-29 were made by the earlier script, which
read the targets straight from ``annotations.csv`` (appeal = mean of liked minus
disliked) and dealt genre-stratified folds with scikit-learn's ``StratifiedKFold``.
``emotify_appeal.py`` and ``emotify_band_ablation.py`` analyse the runs and prediction
files of that script, so its targets, folds and head refit live on here unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import StratifiedKFold, train_test_split

from encore.data.manifest import TAG_PREFIX, Manifest
from encore.inference import Predictor
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
    songs = (
        votes.groupby("track id")
        .agg(
            genre=("genre", "first"),
            **{e: (e, "mean") for e in EMOTIONS},
            appeal=("appeal", "mean"),
            appeal_vote_sd=("appeal", "std"),
            n_votes=("liked", "size"),
        )
        .reset_index()
    )
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
    frame = pd.DataFrame(
        {
            "track_id": songs["track_id"],
            "path": songs["path"],
            "artist": "",
            "title": "",
            "split": splits,
            "label": songs["genre"],
            "appeal": songs["appeal"],
            # the evidence behind each song's rates, for train.target_weighting: evidence
            "appeal_sd": songs["appeal_vote_sd"] / np.sqrt(songs["n_votes"]),
            "tag_support": songs["n_votes"],
            **{TAG_PREFIX + e: songs[e] for e in EMOTIONS},
        }
    )
    return Manifest(
        frame=frame,
        label_names=sorted(GENRE_OFFSETS),
        tag_names=EMOTIONS,
        regression_names=["appeal"],
        info={"source": "emotify annotations"},
    )


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


WIDE_PATH = ("band_statistics",)
"""Model settings that only the song-level refit reads: the networks train the same without them."""


def refit_song_heads(
    run_dir: Path, manifest: Manifest, waveforms: dict, *, hop_seconds: float, band_statistics: bool
) -> Predictor:
    """The run's trained network with its tag and score heads refit on the fold's training
    songs, the wide path set as given (see :func:`encore.train.refit.refit_checkpoint`)."""
    model, card = refit_checkpoint(
        run_dir / "checkpoint.pt",
        select_split(manifest, "train", waveforms),
        band_statistics=band_statistics,
        hop_seconds=hop_seconds,
    )
    return Predictor(model, card)
