"""One class per song from listener votes, or from a catalogue label set.

Listener tags that name one of the classes are votes. Listeners differ in how well they
vote, so votes are weighted by a one-coin Dawid-Skene model (A. P. Dawid and A. M. Skene,
"Maximum likelihood estimation of observer error-rates using the EM algorithm", Applied
Statistics, 1979; one accuracy per listener as in D. Karger, S. Oh and D. Shah,
"Iterative learning for reliable crowdsourcing systems", NeurIPS 2011). Each listener
has one accuracy ``p``; under that model a vote carries the log-odds weight
``log(p (K - 1) / (1 - p))`` for ``K`` classes, zero at chance. The accuracies are
estimated by EM-style alternation: the consensus is the weighted vote share per class,
and a listener's accuracy is their agreement with the consensus of the *other* voters
(leave-one-out, so a listener cannot vouch for themselves), shrunk towards a prior.

The consensus reported is the weighted vote share, not the model's full posterior:
that posterior assumes independent listeners and grows near-certain after a handful
of votes, which would make a margin threshold meaningless. With equal weights the share
is the plain vote share (iterative weighted majority voting, H. Li and B. Yu, "Error
rate bounds and iterative weighted majority voting for crowdsourcing", 2014).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError
from encore.targets.tags import ANONYMOUS_PREFIX, normalize_tag, prepare_tag_votes, tag_key

if TYPE_CHECKING:
    from encore.store import Store

__all__ = ["LABEL_COLUMNS", "derive_single_labels", "labels_from_catalogue"]

logger = logging.getLogger(__name__)

LABEL_COLUMNS: tuple[str, ...] = ("track_id", "label", "confidence", "margin", "n_votes")

PRIOR_VOTES = 2.0
"""Pseudo-votes of the Beta prior on each listener's accuracy; its mean is halfway
between chance (1/K) and certainty, so a listener with few votes gets a modest weight."""

WEIGHT_RANGE = (1e-3, 5.0)
"""Clip for the log-odds vote weight. Below chance a listener's votes count (almost)
nothing rather than against their class; 5.0 (accuracy ~0.99 at K=2) caps any one voice."""

_TOLERANCE = 1e-4


def _check_options(classes: Sequence[str], min_margin: float, min_votes: int, max_iter: int) -> None:
    if isinstance(classes, str) or len(classes) < 2:
        raise ParameterError(f"classes={classes!r} must list at least two class names")
    if not 0.0 <= min_margin <= 1.0:
        raise ParameterError(f"min_margin={min_margin} must be in [0, 1]; 0 labels every song with votes")
    if isinstance(min_votes, bool) or not isinstance(min_votes, (int, np.integer)) or min_votes < 1:
        raise ParameterError(f"min_votes={min_votes!r} must be an integer >= 1")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ParameterError(f"max_iter={max_iter!r} must be an integer >= 1")


def _class_keys(classes: Sequence[str], synonyms: Mapping[str, str] | None) -> list[str]:
    keys: list[str] = []
    for name in classes:
        normalized = normalize_tag(str(name), synonyms=synonyms)
        if normalized is None:
            raise ParameterError(f"class name {name!r} is empty after normalisation; remove it")
        if tag_key(normalized) in keys:
            raise ParameterError(
                f"classes {classes[keys.index(tag_key(normalized))]!r} and {name!r} are the same "
                "tag after normalisation; keep one"
            )
        keys.append(tag_key(normalized))
    return keys


def _weighted_consensus(
    song: np.ndarray,
    listener: np.ndarray,
    label: np.ndarray,
    share: np.ndarray,
    shape: tuple[int, int, int],
    weighted: bool,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Consensus vote shares per song and class, and the listener weights behind them.

    Args:
        song, listener, label: Per vote, its song, listener and class index.
        share: Per vote, 1 / (number of classes that listener voted for on that song).
        shape: ``(n_songs, n_listeners, n_classes)``.
        weighted: Estimate listener weights; plain vote shares when False.
        max_iter: Most weight updates.

    Returns:
        ``(consensus, weights)``: ``(n_songs, n_classes)`` shares summing to 1 per song,
        and ``(n_listeners,)`` vote weights.
    """
    n_songs, n_listeners, n_classes = shape
    prior_accuracy = 0.5 * (1.0 / n_classes + 1.0)
    weights = np.ones(n_listeners)
    for iteration in range(max_iter + 1):
        vote_weight = weights[listener] * share
        scores = np.zeros((n_songs, n_classes))
        np.add.at(scores, (song, label), vote_weight)
        totals = scores.sum(axis=1)
        consensus = scores / totals[:, None]
        if not weighted or iteration == max_iter:
            break
        # Agreement with the other voters' consensus on the same song.
        others = totals[song] - vote_weight
        valid = others > 1e-12
        agreement = np.where(valid, (scores[song, label] - vote_weight) / np.where(valid, others, 1.0), 0.0)
        agreed = np.bincount(listener, weights=share * agreement * valid, minlength=n_listeners)
        judged = np.bincount(listener, weights=share * valid, minlength=n_listeners)
        accuracy = (PRIOR_VOTES * prior_accuracy + agreed) / (PRIOR_VOTES + judged)
        accuracy = np.clip(accuracy, 1e-6, 1 - 1e-6)
        new_weights = np.clip(np.log(accuracy * (n_classes - 1) / (1 - accuracy)), *WEIGHT_RANGE)
        converged = np.max(np.abs(new_weights - weights)) < _TOLERANCE
        weights = new_weights
        if converged:
            logger.debug("listener weights converged after %d iterations", iteration + 1)
            weighted = False  # one last consensus with the final weights
    return consensus, weights


def derive_single_labels(
    events: pd.DataFrame,
    classes: Sequence[str],
    *,
    synonyms: Mapping[str, str] | None = None,
    min_margin: float = 0.2,
    min_votes: int = 3,
    weight_listeners: bool = True,
    max_iter: int = 20,
) -> pd.DataFrame:
    """Derives one class per song from listener tag votes.

    A vote is a tag event whose normalised tag is one of ``classes`` (so "Hip-Hop" votes
    for class "hip hop"); a listener voting for several classes on one song splits one
    vote between them. Listener weights come from a one-coin Dawid-Skene model (see the
    module docstring) when listener ids exist; events without a listener id count as
    separate anonymous listeners and, when no event has one, votes are plain counts.

    Args:
        events: Feedback events (``track_id``, ``kind``, ``listener_id``, ``value_text``).
        classes: The class names, e.g. ``["rock", "jazz", "classical"]``.
        synonyms: Tag spelling to preferred spelling, as for
            :func:`~encore.targets.tags.normalize_tag`.
        min_margin: Smallest lead of the top class's consensus share over the second's
            for a song to be labelled.
        min_votes: Fewest distinct voting listeners for a song to be labelled.
        weight_listeners: Weight listeners by estimated accuracy; plain counts when False.
        max_iter: Most weight-estimation iterations.

    Returns:
        One row per song with at least one vote, ordered by ``track_id``: ``track_id``,
        ``label`` (a class name, or None when the margin or the vote count is below its
        threshold: such songs are left unlabelled, not guessed), ``confidence`` (consensus
        share of the top class), ``margin`` (top minus second share), ``n_votes``; empty
        (with those columns) when no tag event names a class.

    Raises:
        ParameterError: Fewer than two classes, classes that normalise to the same tag,
            or an option out of range.
    """
    _check_options(classes, min_margin, min_votes, max_iter)
    class_names = [str(name) for name in classes]
    keys = _class_keys(class_names, synonyms)
    votes, _ = prepare_tag_votes(events, stop_tags=(), synonyms=synonyms)
    votes = votes[votes["key"].isin(keys)]
    if votes.empty:
        return pd.DataFrame(
            {name: pd.Series(dtype=object if name in ("track_id", "label") else float) for name in LABEL_COLUMNS}
        ).astype({"n_votes": "int64"})

    song_codes, songs = pd.factorize(votes["track_id"], sort=True)
    listener_codes, listeners = pd.factorize(votes["listener"])
    label_codes = votes["key"].map({key: index for index, key in enumerate(keys)}).to_numpy()
    pair = pd.Series(song_codes).astype("int64") * len(listeners) + listener_codes
    share = 1.0 / pair.map(pair.value_counts()).to_numpy(dtype=float)
    named = ~pd.Series(listeners).str.startswith(ANONYMOUS_PREFIX)
    weighted = bool(weight_listeners and named.any())
    consensus, weights = _weighted_consensus(
        song_codes,
        listener_codes,
        label_codes,
        share,
        (len(songs), len(listeners), len(keys)),
        weighted,
        max_iter,
    )
    if weighted:
        logger.info(
            "listener weights: median %.2f, %d of %d at the floor (at or below chance)",
            float(np.median(weights)),
            int(np.sum(weights <= WEIGHT_RANGE[0])),
            len(weights),
        )

    ranked = np.sort(consensus, axis=1)
    confidence = ranked[:, -1]
    margin = ranked[:, -1] - ranked[:, -2]
    n_votes = np.bincount(pd.Series(pair).drop_duplicates().to_numpy() // len(listeners), minlength=len(songs))
    top = np.argmax(consensus, axis=1)
    accepted = (margin >= min_margin - 1e-12) & (n_votes >= min_votes)
    labels = np.where(accepted, np.asarray(class_names, dtype=object)[top], None)
    result = pd.DataFrame(
        {
            "track_id": np.asarray(songs, dtype=object),
            "label": pd.Series(labels, dtype=object),  # object keeps None (str dtype would make it NaN)
            "confidence": confidence,
            "margin": margin,
            "n_votes": n_votes.astype("int64"),
        }
    )
    logger.info(
        "single labels: %d of %d songs labelled (min_margin=%.2f, min_votes=%d)",
        int(accepted.sum()),
        len(result),
        min_margin,
        min_votes,
    )
    return result


def labels_from_catalogue(store: Store, label_set: str, version: int | None = None) -> pd.DataFrame:
    """Single labels from a stored catalogue label set.

    Args:
        store: The feedback store.
        label_set: Name of the set, e.g. ``"folder"``.
        version: Version to read; the latest when None.

    Returns:
        The columns of :func:`derive_single_labels`: confidence and margin 1 and
        ``n_votes`` 1 per song. A song with several labels in the set is left
        unlabelled (label None, confidence ``1 / n``, margin 0, ``n_votes`` n).

    Raises:
        ParameterError: The label set or version is not in the store.
    """
    labels = store.catalogue_labels(label_set, version)
    grouped = labels.groupby("track_id", sort=True)["label"]
    n_labels = grouped.nunique()
    first = grouped.first()
    single = n_labels == 1
    if (~single).any():
        logger.warning(
            "label set %r: %d track(s) have several labels and are left unlabelled, e.g. %r",
            label_set,
            int((~single).sum()),
            n_labels[~single].index[0],
        )
    return pd.DataFrame(
        {
            "track_id": n_labels.index.to_numpy(dtype=object),
            "label": pd.Series(np.where(single, first.to_numpy(dtype=object), None), dtype=object),
            "confidence": np.where(single, 1.0, 1.0 / n_labels.to_numpy()),
            "margin": np.where(single, 1.0, 0.0),
            "n_votes": n_labels.to_numpy(dtype="int64"),
        }
    )
