"""Train / validation / test splits that keep each artist in one split.

Songs by one artist share production, voice and often label, so a model tested on an
artist it trained on looks better than it is (the "artist effect", A. Flexer, "A
closer look on artist filters for musical genre classification", ISMIR 2007). Songs
are grouped by artist and whole groups are dealt to the splits, stratified by label.

The dealing is greedy, as in scikit-learn's ``StratifiedGroupKFold`` but for unequal
split sizes: groups in a seeded random order, largest first, each to the split whose
label counts and size it brings closest to their targets. :func:`kfold_by_artist`
deals the same way into ``k`` equal folds for cross-validation.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError

__all__ = ["SPLIT_NAMES", "kfold_by_artist", "split_by_artist", "split_keeping"]

logger = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def _artist_groups(frame: pd.DataFrame, artist_col: str) -> np.ndarray:
    """Group codes: artists compared case- and space-insensitively, a missing artist
    as a group of its own."""
    artists = frame[artist_col].astype("str").str.strip().str.casefold().replace("", np.nan)
    codes, _ = pd.factorize(artists)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def _group_counts(frame: pd.DataFrame, label_col: str | None, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Songs per (artist group, label) and songs per group, for stratified dealing."""
    if label_col is not None:
        label_codes, label_names = pd.factorize(frame[label_col].astype("str"), sort=True)
    else:
        label_codes, label_names = np.full(len(frame), -1), pd.Index([])
    counts = np.zeros((n_groups, max(len(label_names), 1)))
    labelled = label_codes >= 0
    np.add.at(counts, (groups[labelled], label_codes[labelled]), 1.0)
    return counts, np.bincount(groups, minlength=n_groups).astype(float)


def _deal(
    counts: np.ndarray,
    sizes: np.ndarray,
    fractions: np.ndarray,
    order: np.ndarray,
) -> np.ndarray:
    """Assigns each group to a split.

    Args:
        counts: ``(n_groups, n_labels)`` labelled songs per group and label.
        sizes: ``(n_groups,)`` songs per group, unlabelled ones included.
        fractions: ``(n_splits,)`` target share of each split, summing to 1.
        order: The order in which to deal the groups.

    Returns:
        ``(n_groups,)`` split index per group.
    """
    label_targets = fractions[:, None] * counts.sum(axis=0)[None, :]
    size_targets = fractions * sizes.sum()
    label_scale = np.maximum(counts.sum(axis=0), 1.0)
    filled = np.zeros_like(label_targets)
    size_filled = np.zeros(len(fractions))
    assignment = np.full(len(sizes), -1)
    for group in order:
        costs = np.full(len(fractions), np.inf)
        for split in np.flatnonzero(fractions > 0).tolist():
            after = filled.copy()
            after[split] += counts[group]
            size_after = size_filled.copy()
            size_after[split] += sizes[group]
            # Squared shortfall/overshoot relative to each label's and the size's total.
            label_cost = np.sum(((after - label_targets) / label_scale) ** 2)
            size_cost = np.sum(((size_after - size_targets) / max(sizes.sum(), 1)) ** 2)
            costs[split] = label_cost + size_cost
        split = int(np.argmin(costs))
        assignment[group] = split
        filled[split] += counts[group]
        size_filled[split] += sizes[group]
    return assignment


def _repair(assignment: np.ndarray, counts: np.ndarray, sizes: np.ndarray, fractions: np.ndarray) -> None:
    """Moves groups so that every label is in train and no wanted split is empty."""
    for label in np.flatnonzero(counts.sum(axis=0) > 0):
        if counts[assignment == 0, label].sum() == 0:
            holders = np.flatnonzero(counts[:, label] > 0)
            smallest = holders[np.argmin(sizes[holders])]
            assignment[smallest] = 0
    for split in np.flatnonzero(fractions > 0)[1:]:
        if not np.any(assignment == split):
            donors = np.flatnonzero(assignment == 0)
            # The smallest train group whose labels all stay in train without it.
            for group in donors[np.argsort(sizes[donors], kind="stable")]:
                others = (assignment == 0) & (np.arange(len(assignment)) != group)
                if np.all(counts[others].sum(axis=0) >= (counts.sum(axis=0) > 0)):
                    assignment[group] = split
                    break


def split_by_artist(
    frame: pd.DataFrame,
    *,
    artist_col: str = "artist",
    label_col: str | None = "label",
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> pd.Series:
    """Splits songs into train, val and test with no artist in two splits.

    Args:
        frame: One row per song.
        artist_col: Column naming the artist; compared ignoring case and surrounding
            spaces. Songs with no artist each form their own group.
        label_col: Column of class labels to stratify by, or None. Unlabelled rows
            (missing label) go with their artist.
        val_fraction: Target share of songs in ``val``; 0 for no validation split.
        test_fraction: Target share of songs in ``test``; 0 for no test split.
        seed: Seed of the dealing order; the same seed gives the same split.

    Returns:
        ``"train"``, ``"val"`` or ``"test"`` per row, indexed like ``frame``. Shares are
        approximate: whole artists move, and every label is kept in ``train``.

    Raises:
        ParameterError: A column is missing, a fraction is out of range, or there are
            too few artists for the splits asked for.

    Example:
        >>> frame["split"] = split_by_artist(frame, seed=0)  # doctest: +SKIP
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ParameterError(f"{name}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ParameterError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction:.2f} must be below 1 to leave songs for training"
        )
    for column in (artist_col, label_col):
        if column is not None and column not in frame.columns:
            raise ParameterError(f"column {column!r} not in the frame; columns: {list(frame.columns)}")

    fractions = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])
    groups = _artist_groups(frame, artist_col)
    n_groups = int(groups.max(initial=-1)) + 1
    needed = int(np.sum(fractions > 0))
    if n_groups < needed:
        raise ParameterError(
            f"only {n_groups} artist group(s) for {needed} splits; each split needs its own artists: import songs "
            f"by at least {needed} artists (a song without an artist counts as one)"
        )
    counts, sizes = _group_counts(frame, label_col, groups, n_groups)

    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n_groups)
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    assignment = _deal(counts, sizes, fractions, order)
    _repair(assignment, counts, sizes, fractions)

    split = pd.Series(np.asarray(SPLIT_NAMES, dtype=object)[assignment[groups]], index=frame.index, name="split")
    shares = split.value_counts(normalize=True).reindex(list(SPLIT_NAMES), fill_value=0.0)
    logger.info(
        "split %d songs by %d artist groups: train %.2f, val %.2f, test %.2f",
        len(frame),
        n_groups,
        shares["train"],
        shares["val"],
        shares["test"],
    )
    return split


def split_keeping(
    frame: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    artist_col: str = "artist",
    label_col: str | None = "label",
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[pd.Series, int]:
    """Splits that keep every song of an earlier split where it was, dealing only the new songs.

    A labelling loop adds songs and labels, then compares the model trained before with
    the one trained after on the test split: were the songs dealt again, the earlier model
    would be tested on songs it trained on. So a song in ``previous`` keeps its split, a new
    song by an artist already there joins that artist's split, and the songs by new artists
    (or with none) are dealt among themselves as :func:`split_by_artist` deals (all to
    ``train`` when they are too few artists to fill every split). An artist whose earlier
    songs sit in several splits (its name was filled in after the split) moves whole to the
    first of ``train``, ``val``, ``test`` it was in: no song goes from training into a test split.

    Args:
        frame: One row per song, with ``track_id``.
        previous: The earlier split: ``track_id`` and ``split`` per song.
        artist_col, label_col, val_fraction, test_fraction, seed: As :func:`split_by_artist`.

    Returns:
        The split per row (indexed like ``frame``) and how many songs kept an earlier split.
    """
    earlier = previous.dropna(subset=["split"]).drop_duplicates("track_id").set_index("track_id")["split"].astype(str)
    earlier = earlier[earlier.isin(SPLIT_NAMES)]
    split = pd.Series(frame["track_id"].map(earlier), index=frame.index, dtype=object)
    kept = int(split.notna().sum())
    artists = frame[artist_col].astype("str").str.strip().str.casefold().replace("", np.nan)
    rank = {name: i for i, name in enumerate(SPLIT_NAMES)}
    for artist, rows in split.groupby(artists).groups.items():
        known = split.loc[rows].dropna()
        if known.empty:
            continue
        split.loc[rows] = min(known, key=rank.__getitem__)  # the whole artist, new songs too, in its earliest split
    new = split.isna()
    if new.any():
        rest = frame.loc[new]
        needed = 1 + (val_fraction > 0) + (test_fraction > 0)
        if int(_artist_groups(rest, artist_col).max(initial=-1)) + 1 < needed:  # too few new artists to fill every split
            split.loc[new] = "train"
        else:
            split.loc[new] = split_by_artist(
                rest,
                artist_col=artist_col,
                label_col=label_col,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                seed=seed,
            ).to_numpy()
    split.name = "split"
    return split, kept


def kfold_by_artist(
    frame: pd.DataFrame,
    *,
    n_folds: int = 5,
    artist_col: str = "artist",
    label_col: str | None = "label",
    seed: int = 0,
) -> pd.Series:
    """Deals songs into ``n_folds`` folds, stratified by label, with no artist in two folds.

    Args:
        frame: One row per song.
        artist_col: Column naming the artist (compared ignoring case and surrounding
            spaces; songs with no artist each form their own group).
        label_col: Column of class labels to stratify by, or None.
        n_folds: Number of folds, at least 2.
        seed: Seed of the dealing order; the same seed gives the same folds.

    Returns:
        The fold (0 .. n_folds - 1) of each row, indexed like ``frame``. Fold sizes are
        approximately equal (whole artists move) and each label is spread over the folds
        as evenly as its artists allow. Fold ``i`` is the test set of round ``i``.

    Raises:
        ParameterError: A column is missing, ``n_folds`` is below 2, or there are fewer
            artist groups than folds.

    Example:
        >>> frame["fold"] = kfold_by_artist(frame, n_folds=5)                 # doctest: +SKIP
        >>> train, test = frame[frame.fold != 0], frame[frame.fold == 0]     # doctest: +SKIP
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ParameterError(f"n_folds={n_folds!r} must be an integer >= 2")
    for column in (artist_col, label_col):
        if column is not None and column not in frame.columns:
            raise ParameterError(f"column {column!r} not in the frame; columns: {list(frame.columns)}")
    groups = _artist_groups(frame, artist_col)
    n_groups = int(groups.max(initial=-1)) + 1
    if n_groups < n_folds:
        raise ParameterError(
            f"only {n_groups} artist group(s) for n_folds={n_folds}; each fold needs its own artists: "
            "lower n_folds or add songs by more artists"
        )
    counts, sizes = _group_counts(frame, label_col, groups, n_groups)
    shuffled = np.random.default_rng(seed).permutation(n_groups)
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    assignment = _deal(counts, sizes, np.full(n_folds, 1.0 / n_folds), order)
    for fold in range(n_folds):  # a fold left empty by very unequal artists takes the smallest group of the largest fold
        if not np.any(assignment == fold):
            largest = np.argmax(np.bincount(assignment, weights=sizes, minlength=n_folds))
            donors = np.flatnonzero(assignment == largest)
            assignment[donors[np.argmin(sizes[donors])]] = fold
    folds = pd.Series(assignment[groups], index=frame.index, name="fold").astype("int64")
    logger.info(
        "dealt %d songs by %d artist groups into %d folds of sizes %s",
        len(frame),
        n_groups,
        n_folds,
        folds.value_counts().sort_index().tolist(),
    )
    return folds
