"""Where the appeal correlation comes from: genre against ranking within a genre.

Usage:
    python experiments/emotify_appeal.py PREDICTIONS.csv [--data ../shared/data/emotify] [--folds 5] [--seed 0]

Reads the held-out predictions that ``emotify_cv.py --predictions`` writes (same
``--folds`` and ``--seed``) and prints, per model, the appeal Spearman over all songs and
within each genre, next to two references that know only the genre:
- the true genre's mean appeal over all 400 songs: what genre alone gives (it sees the
  held-out songs, so it is an upper bound for a genre-only predictor, and constant
  within a genre);
- the model's own genre probabilities times the genre means of the song's training
  folds: what its genre guess gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from emotify_history import GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    songs, _ = read_targets(args.data)
    genres = sorted(GENRE_OFFSETS)
    # each held-out song's genre means, from the songs its model trained on
    train_means = pd.DataFrame(index=songs["track_id"], columns=genres, dtype=float)
    for splits in fold_splits(songs, args.folds, args.seed, 0.0):
        train = songs[splits == "train"]
        means = train.groupby("genre")["appeal"].mean()
        for track in songs.loc[splits == "test", "track_id"]:
            train_means.loc[track] = means[genres].to_numpy()

    predictions = pd.read_csv(args.predictions, dtype={"track_id": str})
    truth = songs.set_index("track_id")[["genre", "appeal"]]
    rows = []
    for name, frame in predictions.groupby("model", sort=False):
        frame = frame.set_index("track_id").join(truth.rename(columns={"appeal": "appeal_true"}))
        probs = frame[[f"p_{g}" for g in genres]].to_numpy()
        means = train_means.loc[frame.index].to_numpy()
        references = {
            f"{name}": frame["appeal"].to_numpy(),
            f"{name}: its genre probabilities x genre means": (probs * means).sum(1),
        }
        if not rows:
            genre_means = songs.groupby("genre")["appeal"].mean()
            references["true genre's mean, all songs (no model)"] = frame["genre"].map(genre_means).to_numpy()
        for label, values in references.items():
            row = {"predictor": label, "all": spearmanr(values, frame["appeal_true"]).statistic}
            for genre in genres:
                inside = (frame["genre"] == genre).to_numpy()
                constant = np.ptp(values[inside]) == 0
                row[genre] = np.nan if constant else spearmanr(values[inside], frame["appeal_true"].to_numpy()[inside]).statistic
            rows.append(row)
    table = pd.DataFrame(rows)
    print("| predictor | all songs | " + " | ".join(f"within {g}" for g in genres) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in genres) + " |")
    for row in table.itertuples(index=False):
        cells = " | ".join("n/a" if np.isnan(v) else f"{v:.2f}" for v in row[1:])
        print(f"| {row.predictor} | {cells} |")


if __name__ == "__main__":
    main()
