"""Artist-grouped, label-stratified splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.splits import kfold_by_artist, split_by_artist


@pytest.fixture
def songs() -> pd.DataFrame:
    """300 songs by 60 artists, each artist mostly in one of 4 genres; some songs lack
    an artist or a label."""
    rng = np.random.default_rng(7)
    artists = rng.integers(0, 60, size=300)
    genre_of = rng.choice(["rock", "jazz", "pop", "folk"], size=60)
    frame = pd.DataFrame({"artist": [f"Artist {a}" for a in artists], "label": genre_of[artists]})
    frame.loc[frame.index % 23 == 0, "artist"] = None
    frame.loc[frame.index % 11 == 0, "label"] = None
    frame.loc[5, "artist"] = " artist 3 "  # same artist as "Artist 3"
    return frame


def test_no_artist_in_two_splits(songs):
    split = split_by_artist(songs)
    assert set(split) == {"train", "val", "test"} and split.index.equals(songs.index)
    named = songs["artist"].notna()
    artist = songs.loc[named, "artist"].str.strip().str.casefold()
    assert split[named].groupby(artist).nunique().max() == 1


def test_fractions_are_approximately_met(songs):
    shares = split_by_artist(songs, val_fraction=0.15, test_fraction=0.2).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.65, abs=0.06)
    assert shares["val"] == pytest.approx(0.15, abs=0.06)
    assert shares["test"] == pytest.approx(0.2, abs=0.06)


def test_every_label_is_in_train(songs):
    rare = pd.DataFrame({"artist": ["Solo"], "label": ["polka"]})
    frame = pd.concat([songs, rare], ignore_index=True)
    for seed in range(5):
        split = split_by_artist(frame, seed=seed)
        assert set(frame.loc[split == "train", "label"].dropna()) == set(frame["label"].dropna())


def test_deterministic_under_seed(songs):
    assert split_by_artist(songs, seed=3).equals(split_by_artist(songs, seed=3))
    assert not split_by_artist(songs, seed=3).equals(split_by_artist(songs, seed=4))


def test_without_labels_and_without_val():
    frame = pd.DataFrame({"artist": [f"a{i % 10}" for i in range(50)]})
    split = split_by_artist(frame, label_col=None, val_fraction=0.0, test_fraction=0.3)
    assert set(split) == {"train", "test"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": -0.1}, "val_fraction=-0.1"),
        ({"test_fraction": 1.0}, "test_fraction=1.0"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
        ({"artist_col": "singer"}, "'singer'"),
    ],
)
def test_bad_options(songs, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        split_by_artist(songs, **kwargs)


def test_too_few_artists_names_the_count_and_the_fix():
    frame = pd.DataFrame({"artist": ["a", "a", "b"], "label": ["x", "x", "y"]})
    with pytest.raises(ParameterError, match=r"only 2 artist group\(s\) for 3 splits.*import songs by at least 3 artists"):
        split_by_artist(frame)


def test_kfold_keeps_each_artist_in_one_fold_and_balances_labels(songs):
    folds = kfold_by_artist(songs, n_folds=5, seed=1)
    assert sorted(folds.unique()) == [0, 1, 2, 3, 4] and folds.index.equals(songs.index)
    artists = songs["artist"].str.strip().str.casefold()
    assert (folds[artists.notna()].groupby(artists[artists.notna()]).nunique() == 1).all()
    sizes = folds.value_counts()
    assert sizes.min() >= 0.6 * len(songs) / 5 and sizes.max() <= 1.4 * len(songs) / 5
    per_label = pd.crosstab(songs["label"], folds)
    assert (per_label.min(axis=1) > 0).all()  # every label in every fold
    assert folds.equals(kfold_by_artist(songs, n_folds=5, seed=1))
    assert not folds.equals(kfold_by_artist(songs, n_folds=5, seed=2))


def test_kfold_errors(songs):
    with pytest.raises(ParameterError, match="n_folds"):
        kfold_by_artist(songs, n_folds=1)
    with pytest.raises(ParameterError, match="artist group"):
        kfold_by_artist(songs.head(3).assign(artist="same"), n_folds=2)
    with pytest.raises(ParameterError, match="'band'"):
        kfold_by_artist(songs, artist_col="band")


def test_split_keeping_keeps_every_earlier_song_and_deals_only_the_new(songs):
    from encore.targets.splits import split_keeping

    songs = songs.assign(track_id=[f"t{i}" for i in range(len(songs))])
    before = songs.iloc[:240].assign(split=split_by_artist(songs.iloc[:240]))
    added = songs.iloc[240:].copy()
    added.loc[added.index[:5], "artist"] = "Artist 3"  # new songs by an artist already dealt
    added.loc[added.index[5:], "artist"] = [f"Newcomer {i % 20}" for i in range(len(added) - 5)]
    now = pd.concat([songs.iloc[:240], added])
    split, kept = split_keeping(now, before[["track_id", "split"]])
    assert kept == 240 and split.index.equals(now.index)
    assert (split.iloc[:240].to_numpy() == before["split"].to_numpy()).all()  # no earlier song moves
    artist_3 = before.loc[before["artist"].str.strip().str.casefold() == "artist 3", "split"].unique()
    assert len(artist_3) == 1 and (split.iloc[240:245] == artist_3[0]).all()  # joins its artist's split
    assert set(split.iloc[245:]) == {"train", "val", "test"}  # twenty new artists are dealt into every split
    named = now["artist"].notna()
    assert split[named].groupby(now.loc[named, "artist"].str.strip().str.casefold()).nunique().max() == 1
    # a dealing from scratch would have moved earlier songs: the reason to keep them
    assert (split_by_artist(now).iloc[:240].to_numpy() != before["split"].to_numpy()).any()


def test_split_keeping_never_moves_a_training_song_into_test():
    from encore.targets.splits import split_keeping

    # songs dealt while they had no artist, the same artist filled in later: it sits in three splits
    earlier = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "split": ["test", "train", "val", "test"]})
    now = pd.DataFrame({"track_id": ["a", "b", "c", "d", "e"], "artist": ["Ann", "Ann", "Ann", None, None], "label": "x"})
    split, kept = split_keeping(now, earlier)
    assert kept == 4
    assert list(split) == ["train", "train", "train", "test", "train"]  # Ann whole in train; one new song trains
