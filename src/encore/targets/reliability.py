"""How reliable a per-song target is: split-half reliability and the ceiling it sets.

A per-song rate (the share of a song's listeners who liked it, or who tagged it
"calm") is itself an estimate from a handful of listeners. Split each song's
listeners into two random halves, compute the rate from each half, and correlate the
halves across songs (Spearman); the Spearman-Brown formula ``2 r / (1 + r)`` corrects
that correlation from half to full size. Averaged over several seeded random splits
this is the target's reliability; no model can correlate with the observed target
better than its square root, the *ceiling* (C. Spearman, "Correlation calculated from
faulty data", British Journal of Psychology, 1910; W. Brown, same volume).

:func:`listener_responses` turns store events into one row per (song, listener) with
each target's response; :func:`split_half_reliability` does the rest.

Example:
    >>> responses = listener_responses(store.events(), tags=["calm", "sad"])   # doctest: +SKIP
    >>> split_half_reliability(responses)["tag:calm"]                          # doctest: +SKIP
    {'reliability': 0.78, 'ceiling': 0.88, 'n_songs': 400}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from encore.exceptions import ParameterError
from encore.targets.tags import normalize_tag, prepare_tag_votes, tag_key

__all__ = ["RESPONSE_TARGETS", "listener_responses", "song_rates", "split_half_reliability"]

logger = logging.getLogger(__name__)

RESPONSE_TARGETS: tuple[str, ...] = ("like_rate", "like_minus_dislike", "appeal")
"""Targets every response table has: ``like_rate`` (1 if the listener liked the song),
``like_minus_dislike`` (+1, 0 or -1), ``appeal`` (the listener's mean like/dislike/
rating evidence as in :func:`~encore.targets.appeal.compute_appeal`; missing for a
listener who gave none)."""


def listener_responses(
    events: pd.DataFrame,
    *,
    tags: Sequence[str] = (),
    synonyms: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per (song, named listener) with any event on the song, and their responses.

    Args:
        events: Events as :meth:`~encore.store.Store.events` returns them;
            events without a listener id are left out (their halves cannot be formed).
        tags: Tag names to give a ``tag:<name>`` column each (1 if the listener used a
            tag normalising to it, else 0).
        synonyms: As for :func:`~encore.targets.tags.normalize_tag`.

    Returns:
        Columns ``track_id``, ``listener``, the :data:`RESPONSE_TARGETS` and one
        ``tag:<name>`` per tag. A song's mean of a column is its observed rate.
    """
    named = events[events["listener_id"].notna()]
    pairs = named[["track_id", "listener_id"]].drop_duplicates().rename(columns={"listener_id": "listener"})
    key = ["track_id", "listener"]
    kinds = named.rename(columns={"listener_id": "listener"})

    def indicator(kind: str) -> pd.Series:
        chosen = kinds.loc[kinds["kind"] == kind, key].drop_duplicates()
        return pd.Series(1.0, index=pd.MultiIndex.from_frame(chosen))

    responses = pairs.set_index(key)
    responses["like_rate"] = indicator("like").reindex(responses.index, fill_value=0.0)
    dislike = indicator("dislike").reindex(responses.index, fill_value=0.0)
    responses["like_minus_dislike"] = responses["like_rate"] - dislike
    opinions = kinds[kinds["kind"].isin(["like", "dislike", "rating"])]
    success = np.select(
        [opinions["kind"] == "like", opinions["kind"] == "dislike"],
        [1.0, 0.0],
        default=np.clip((pd.to_numeric(opinions["value_num"]).to_numpy(dtype=float) - 1.0) / 4.0, 0.0, 1.0),
    )
    appeal = pd.Series(success, index=pd.MultiIndex.from_frame(opinions[key])).groupby(level=key).mean()
    responses["appeal"] = appeal.reindex(responses.index)
    if tags:
        votes, _ = prepare_tag_votes(named, stop_tags=(), synonyms=synonyms)
        for name in tags:
            normalised = normalize_tag(str(name), synonyms=synonyms)
            wanted = tag_key(normalised) if normalised else None
            chosen = votes.loc[votes["key"] == wanted, key].drop_duplicates()
            used = pd.Series(1.0, index=pd.MultiIndex.from_frame(chosen))
            responses[f"tag:{name}"] = used.reindex(responses.index, fill_value=0.0)
    return responses.reset_index()


def song_rates(responses: pd.DataFrame) -> pd.DataFrame:
    """Each song's observed rate per target: the mean response of its listeners."""
    return responses.drop(columns="listener").groupby("track_id").mean()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def split_half_reliability(
    responses: pd.DataFrame,
    *,
    targets: Sequence[str] | None = None,
    n_splits: int = 50,
    seed: int = 0,
    min_listeners: int = 2,
) -> dict[str, dict[str, float]]:
    """Split-half reliability of each target's per-song rate and its ceiling.

    Per split, each song's listeners are shuffled (seeded) and dealt into two equal
    halves (with an odd number, the last one is left out of that split, since the
    Spearman-Brown doubling assumes equal halves); each half's mean response per song is
    correlated with the other's across songs (Spearman), corrected by Spearman-Brown,
    and the corrected values are averaged over ``n_splits`` splits.

    Args:
        responses: As :func:`listener_responses` returns.
        targets: Columns to assess; every column but ``track_id`` and ``listener`` by default.
        n_splits: Random splits to average over.
        seed: Seed of the splits; the same seed gives the same result.
        min_listeners: Songs with fewer listeners (with a response to the target) are left out.

    Returns:
        ``{target: {"reliability": r, "ceiling": sqrt(max(r, 0)), "n_songs": n}}``;
        ``reliability`` and ``ceiling`` are NaN when fewer than three songs qualify or
        a half is constant in every split.

    Raises:
        ParameterError: An option is out of range or a target is not a column.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ParameterError(f"n_splits={n_splits!r} must be an integer >= 1; 50 is usual")
    if isinstance(min_listeners, bool) or not isinstance(min_listeners, (int, np.integer)) or min_listeners < 2:
        raise ParameterError(f"min_listeners={min_listeners!r} must be an integer >= 2 (a half needs one listener)")
    columns = [c for c in responses.columns if c not in ("track_id", "listener")] if targets is None else list(targets)
    unknown = [c for c in columns if c not in responses.columns]
    if unknown:
        raise ParameterError(f"targets {unknown} are not columns of the responses; found {list(responses.columns)}")
    rng = np.random.default_rng(seed)
    result: dict[str, dict[str, float]] = {}
    for target in columns:
        rows = responses.loc[responses[target].notna(), ["track_id", target]]
        sizes = rows.groupby("track_id")[target].transform("size")
        rows = rows[sizes >= min_listeners]
        songs, song_codes = np.unique(rows["track_id"].to_numpy(dtype=object), return_inverse=True)
        values = rows[target].to_numpy(dtype=float)
        counts = np.bincount(song_codes, minlength=len(songs))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        corrected = []
        for _ in range(n_splits if len(songs) >= 3 else 0):
            order = np.lexsort((rng.random(len(values)), song_codes))
            position = np.empty(len(values), dtype=np.int64)
            position[order] = np.arange(len(values)) - np.repeat(starts, counts)
            half = counts[song_codes] // 2
            first, second = position < half, (position >= half) & (position < 2 * half)
            halves = [
                np.bincount(song_codes[mask], weights=values[mask], minlength=len(songs))
                / np.bincount(song_codes[mask], minlength=len(songs))
                for mask in (first, second)
            ]
            rho = _spearman(*halves)
            if np.isfinite(rho):
                corrected.append(2.0 * rho / (1.0 + rho) if rho > -1.0 else -1.0)
        reliability = float(np.mean(corrected)) if corrected else float("nan")
        ceiling = float(np.sqrt(max(reliability, 0.0))) if corrected else float("nan")
        result[target] = {"reliability": reliability, "ceiling": ceiling, "n_songs": int(len(songs))}
    logger.info(
        "split-half reliability over %d splits: %s",
        n_splits,
        {name: round(value["reliability"], 2) for name, value in result.items()},
    )
    return result
