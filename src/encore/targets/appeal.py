"""Listener appeal per song: three shrunk rates combined into one score with its uncertainty.

Three components, each a rate in [0, 1] per song:

==========  ======================================================  =========================
component   successes over trials                                   evidence weight per event
==========  ======================================================  =========================
like        likes over likes and dislikes                           :data:`EXPLICIT_WEIGHT`
rating      ``(stars - 1) / 4`` summed over ratings: 5 stars 1     :data:`EXPLICIT_WEIGHT`
listen      complete plays over plays and skips (1 - skip rate)     :data:`IMPLICIT_WEIGHT`
==========  ======================================================  =========================

A play is short (a skip) when it lasted less than ``min(skip_ms, skip_fraction *
duration)`` where the song's duration is known, else less than ``skip_ms`` (30 s).
Each component is shrunk toward its catalogue mean by the amount of evidence: a Beta
prior ``Beta(s m, s (1 - m))`` with ``m`` the catalogue-wide rate and the strength ``s``
fitted to the catalogue by the method of moments (the spread of the songs' rates beyond
what binomial noise explains; empirical Bayes, as in D. Robinson, "Introduction to
Empirical Bayes", 2017), giving the posterior ``Beta(s m + a, s (1 - m) + n - a)``.
A rating is graded, not 0 or 1: its noise is the pooled variance of single ratings around
their song's mean, in place of the Bernoulli ``m (1 - m)``, in both the strength and the
posterior's variance (a normal model's shrinkage with the same form).
The song's appeal is the inverse-variance weighted mean of the posterior means of the
components it has evidence for, its standard error the combination's
``sqrt(1 / sum(1 / var))``. Rates, not counts: a song heard by many is not favoured
for its exposure, and a song with two likes ranks below one with forty likes and a
dislike, and says so through its larger standard error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError

__all__ = [
    "APPEAL_COLUMNS",
    "EVIDENCE_COLUMNS",
    "EXPLICIT_WEIGHT",
    "IMPLICIT_WEIGHT",
    "appeal_evidence",
    "compute_appeal",
    "score_appeal",
    "skip_rates",
    "skip_thresholds",
]

logger = logging.getLogger(__name__)

EXPLICIT_WEIGHT = 1.0
"""Weight of a like, dislike or rating: the listener told us."""

IMPLICIT_WEIGHT = 0.25
"""Weight of a play or skip: behaviour is noisier (a skip may mean "not now", a full
play may be background listening), so four plays count as much as one like: the
listen component's trials are counted at this weight, which widens its posterior."""

APPEAL_COLUMNS: tuple[str, ...] = (
    "track_id",
    "appeal",
    "appeal_sd",
    "n_events",
    "n_listeners",
    "like_rate",
    "rating_mean",
    "skip_rate",
)

DEFAULT_STRENGTH = 2.0
"""Prior strength (pseudo-events) when too few songs have a component to fit one."""

STRENGTH_RANGE = (1.0, 100.0)
"""Bounds of a fitted prior strength: at least one pseudo-event, at most 100 (a
component whose songs differ by no more than noise is shrunk nearly to its mean)."""

_APPEAL_KINDS = ("like", "dislike", "rating", "play", "skip")


def skip_thresholds(
    track_ids: np.ndarray,
    durations: Mapping[str, float] | None,
    *,
    skip_ms: float = 30000.0,
    skip_fraction: float = 0.3,
) -> np.ndarray:
    """Per play, the milliseconds below which it counts as a skip.

    Args:
        track_ids: ``(n_plays,)`` the track of each play.
        durations: Seconds per track id, where known.
        skip_ms: The threshold where the duration is unknown.
        skip_fraction: With a known duration, ``skip_fraction * duration`` when that is
            shorter than ``skip_ms`` (a 40 s jingle is skipped at 12 s, not 30 s).

    Returns:
        ``(n_plays,)`` thresholds in milliseconds.
    """
    threshold = np.full(len(track_ids), float(skip_ms))
    if durations:
        seconds = pd.Series(track_ids, dtype=object).map(dict(durations)).astype(float).to_numpy()
        known = np.isfinite(seconds) & (seconds > 0)
        threshold[known] = np.minimum(skip_ms, skip_fraction * seconds[known] * 1000.0)
    return threshold


def skip_rates(
    events: pd.DataFrame,
    *,
    durations: Mapping[str, float] | None = None,
    skip_ms: float = 30000.0,
    skip_fraction: float = 0.3,
) -> pd.DataFrame:
    """Per track, its plays and skips and the skip rate (raw, not shrunk).

    Args:
        events: Events with ``track_id``, ``kind`` and ``value_num`` (milliseconds);
            ``play`` and ``skip`` rows are used, a play of unknown length is left out.
        durations, skip_ms, skip_fraction: The short-play rule, see :func:`skip_thresholds`.

    Returns:
        Columns ``track_id``, ``listens`` (plays and skips), ``skips`` (skips and
        short plays), ``skip_rate``; most listened first, then by ``track_id``.
    """
    used = events[events["kind"].isin(["play", "skip"])]
    value = pd.to_numeric(used["value_num"], errors="coerce").to_numpy(dtype=float)
    kind = used["kind"].to_numpy()
    keep = (kind == "skip") | np.isfinite(value)
    track_ids = used["track_id"].astype("str").to_numpy(dtype=object)
    threshold = skip_thresholds(track_ids, durations, skip_ms=skip_ms, skip_fraction=skip_fraction)
    frame = pd.DataFrame({"track_id": track_ids, "skipped": (kind == "skip") | (value < threshold)})[keep]
    rates = frame.groupby("track_id")["skipped"].agg(listens="size", skips="sum").reset_index()
    rates["skips"] = rates["skips"].astype("int64")
    rates["skip_rate"] = rates["skips"] / rates["listens"]
    return rates.sort_values(["listens", "track_id"], ascending=[False, True], ignore_index=True)


def _latest_opinions(events: pd.DataFrame) -> pd.DataFrame:
    """Keeps each named listener's latest like/dislike and latest rating per song.

    A listener who liked and later disliked a song, or re-rated it, counts once with
    their latest opinion; plays and skips all count, and so do anonymous events.
    Opinions given at the same latest instant (a survey form where a participant
    ticked both "liked" and "disliked") all count: neither came after the other.
    Without timestamps the last row wins.
    """
    if "listener_id" not in events.columns:
        return events
    named = events["listener_id"].notna() & events["kind"].isin(["like", "dislike", "rating"])
    if not named.any():
        return events
    opinions = events[named].assign(group=np.where(events.loc[named, "kind"] == "rating", "rating", "opinion"))
    key = ["track_id", "listener_id", "group"]
    if "timestamp" in opinions.columns:
        newest = opinions.groupby(key)["timestamp"].transform("max")
        values = [name for name in ("value_num", "value") if name in opinions.columns]
        latest = opinions[opinions["timestamp"] == newest].drop_duplicates([*key, "kind", *values], keep="last")
    else:
        latest = opinions.drop_duplicates(key, keep="last")
    return pd.concat([events[~named], latest.drop(columns="group")]).sort_index()


def _fit_strength(success: np.ndarray, trials: np.ndarray, mean: float, per_trial: float) -> float:
    """Method-of-moments strength of a prior from songs' successes over trials.

    The songs' rates vary by their true spread plus sampling noise, ``per_trial / trials``
    (a Bernoulli rate's ``m (1 - m)``; a rating's own within-song variance); the strength
    is ``per_trial / spread - 1``, clipped to :data:`STRENGTH_RANGE`. Too few songs, or no
    spread beyond noise, give the default or the strongest prior.
    """
    seen = trials > 0
    if seen.sum() < 3:
        return DEFAULT_STRENGTH
    rates = success[seen] / trials[seen]
    spread = float(np.var(rates)) - float(np.mean(per_trial / trials[seen]))
    if spread <= 0:
        return STRENGTH_RANGE[1]
    return float(np.clip(per_trial / spread - 1.0, *STRENGTH_RANGE))


def _within_song_variance(success: np.ndarray, squares: np.ndarray, trials: np.ndarray) -> float | None:
    """The pooled variance of single ratings around their song's mean, or None without two ratings of a song."""
    freedom = float(np.sum(np.maximum(trials - 1.0, 0.0)))
    if freedom <= 0:
        return None
    seen = trials > 0
    deviations = squares[seen] - success[seen] ** 2 / trials[seen]
    return max(float(np.sum(deviations)) / freedom, 1e-4)


def compute_appeal(
    events: pd.DataFrame,
    *,
    durations: Mapping[str, float] | None = None,
    skip_ms: float = 30000.0,
    skip_fraction: float = 0.3,
    prior_strength: float | None = None,
) -> pd.DataFrame:
    """Scores each song's listener appeal from likes, ratings and plays (see the module docstring).

    Args:
        events: Feedback events with ``track_id``, ``kind`` and ``value_num`` (stars for
            ratings, milliseconds for plays); ``listener_id`` and ``timestamp`` are used
            when present to keep each listener's latest opinion. Tags, play counts and
            plays of unknown length are ignored.
        durations: Song duration in seconds per ``track_id``, for the short-play rule.
        skip_ms: A play shorter than this (milliseconds) is a skip.
        skip_fraction: With a known duration, a play shorter than this fraction of the
            song is a skip too (the threshold is the smaller of the two).
        prior_strength: Pseudo-events of every component's prior; None fits it per
            component to the catalogue. Larger values pull songs with little evidence
            harder toward the catalogue mean.

    Returns:
        One row per song with appeal evidence, ordered by ``track_id``: ``track_id``,
        ``appeal`` (in [0, 1]), ``appeal_sd`` (its standard error), ``n_events``
        (events used), ``n_listeners`` (distinct listeners behind them; each anonymous
        event counts as one), ``like_rate`` (likes over likes and dislikes),
        ``rating_mean`` (stars), ``skip_rate`` (skips and short plays over plays and
        skips); the raw rates are NaN without such events.

    Raises:
        ParameterError: An option is out of range or ``events`` lacks a needed column.
    """
    if not skip_ms > 0:
        raise ParameterError(f"skip_ms={skip_ms} must be a positive number of milliseconds")
    if not 0 < skip_fraction <= 1:
        raise ParameterError(f"skip_fraction={skip_fraction} must be in (0, 1]")
    if prior_strength is not None and not prior_strength > 0:
        raise ParameterError(f"prior_strength={prior_strength} must be positive, or None to fit it to the catalogue")
    value_column = "value_num" if "value_num" in events.columns else "value"
    missing = [name for name in ("track_id", "kind", value_column) if name not in events.columns]
    if missing:
        raise ParameterError(
            f"events lack column(s) {missing}; found {list(events.columns)}. Pass events as Store.events() returns them"
        )

    per_song = appeal_evidence(
        events, durations=durations, skip_ms=skip_ms, skip_fraction=skip_fraction, value_column=value_column
    )
    return score_appeal(per_song, prior_strength=prior_strength)


EVIDENCE_COLUMNS: tuple[str, ...] = (
    "likes",
    "opinions",
    "rating_success",
    "rating_success_sq",
    "ratings",
    "stars",
    "completes",
    "listens",
    "n_events",
    "n_listeners",
)
"""Per-song appeal evidence, the input of :func:`score_appeal`: ``likes`` over ``opinions``
(likes and dislikes); ``rating_success`` (sum of ``(stars - 1) / 4``) over ``ratings``,
``rating_success_sq`` the sum of their squares (for the spread of a song's ratings),
``stars`` their sum; ``completes`` (plays at least the skip threshold) over ``listens``
(plays of known length and skips); ``n_events``, ``n_listeners``."""


def appeal_evidence(
    events: pd.DataFrame,
    *,
    durations: Mapping[str, float] | None = None,
    skip_ms: float = 30000.0,
    skip_fraction: float = 0.3,
    value_column: str = "value_num",
) -> pd.DataFrame:
    """Counts each song's appeal evidence from its events (each listener's latest opinion).

    Returns:
        Index ``track_id`` (sorted), the :data:`EVIDENCE_COLUMNS`. The store computes the
        same table in SQL for big catalogues
        (:meth:`~encore.store.Store.appeal_evidence`).
    """
    used = events[events["kind"].isin(_APPEAL_KINDS)].copy()
    used["track_id"] = used["track_id"].astype("str")
    used = _latest_opinions(used)
    kind = used["kind"].to_numpy()
    value = pd.to_numeric(used[value_column], errors="coerce").to_numpy(dtype=float)
    threshold = skip_thresholds(used["track_id"].to_numpy(dtype=object), durations, skip_ms=skip_ms, skip_fraction=skip_fraction)
    short_play = (kind == "play") & (value < threshold)
    listen = (kind == "skip") | ((kind == "play") & np.isfinite(value))  # a play of unknown length says nothing
    rating = (kind == "rating") & np.isfinite(value)
    if "listener_id" in used.columns:
        listener = used["listener_id"].astype(object).to_numpy()
    else:
        listener = np.full(len(used), None, dtype=object)
    anonymous = pd.isna(listener)
    listener = np.where(anonymous, [f"\x00anonymous-{i}" for i in range(len(used))], listener)
    evidence = pd.DataFrame(
        {
            "track_id": used["track_id"].to_numpy(),
            "listener": listener,
            "likes": (kind == "like").astype(float),
            "opinions": np.isin(kind, ["like", "dislike"]).astype(float),
            "rating_success": np.where(rating, np.clip((value - 1.0) / 4.0, 0.0, 1.0), 0.0),
            "rating_success_sq": np.where(rating, np.clip((value - 1.0) / 4.0, 0.0, 1.0) ** 2, 0.0),
            "ratings": rating.astype(float),
            "stars": np.where(rating, value, 0.0),
            "completes": (listen & ~short_play & (kind == "play")).astype(float),
            "listens": listen.astype(float),
        }
    )[np.isin(kind, ["like", "dislike"]) | rating | listen]
    per_song = evidence.drop(columns="listener").groupby("track_id", sort=True).sum()
    per_song["n_events"] = evidence.groupby("track_id", sort=True).size()
    per_song["n_listeners"] = evidence.groupby("track_id", sort=True)["listener"].nunique()
    return per_song[list(EVIDENCE_COLUMNS)]


def score_appeal(per_song: pd.DataFrame, *, prior_strength: float | None = None) -> pd.DataFrame:
    """Shrinks and combines per-song evidence into appeal scores (see the module docstring).

    Args:
        per_song: Index ``track_id``, the :data:`EVIDENCE_COLUMNS`.
        prior_strength: Pseudo-events of every component's prior; None fits it.

    Returns:
        The columns of :func:`compute_appeal`, one row per song with evidence.
    """
    per_song = per_song[per_song["n_events"] > 0]
    if per_song.empty:
        return pd.DataFrame({name: pd.Series(dtype=object if name == "track_id" else float) for name in APPEAL_COLUMNS})
    components = {  # name: (successes, trials) in evidence units
        "like": (per_song["likes"] * EXPLICIT_WEIGHT, per_song["opinions"] * EXPLICIT_WEIGHT),
        "rating": (per_song["rating_success"] * EXPLICIT_WEIGHT, per_song["ratings"] * EXPLICIT_WEIGHT),
        "listen": (per_song["completes"] * IMPLICIT_WEIGHT, per_song["listens"] * IMPLICIT_WEIGHT),
    }
    precision = np.zeros(len(per_song))
    weighted = np.zeros(len(per_song))
    priors = {}
    for name, (success, trials) in components.items():
        a, n = success.to_numpy(dtype=float), trials.to_numpy(dtype=float)
        if n.sum() == 0:
            continue
        mean = float(np.clip(a.sum() / n.sum(), 0.01, 0.99))
        # A like or a complete play is 0 or 1, so one event varies by m (1 - m); a rating is
        # graded, and listeners' stars for one song vary far less than that (a Bernoulli
        # noise model would take a catalogue's real differences for noise and shrink every
        # song to the mean): its noise is the ratings' own spread within songs.
        within = _within_song_variance(a, per_song["rating_success_sq"].to_numpy(dtype=float), n) if name == "rating" else None
        per_trial = within if within is not None else mean * (1.0 - mean)
        strength = prior_strength if prior_strength is not None else _fit_strength(a, n, mean, per_trial)
        priors[name] = (round(mean, 3), round(strength, 1))
        posterior = (strength * mean + a) / (strength + n)
        noise = per_trial if within is not None else posterior * (1.0 - posterior)
        variance = noise / (strength + n + 1.0)  # for 0/1 events, the Beta posterior's variance
        has = n > 0
        precision[has] += 1.0 / variance[has]
        weighted[has] += posterior[has] / variance[has]
    opinions, ratings, listens = per_song["opinions"], per_song["ratings"], per_song["listens"]
    result = pd.DataFrame(
        {
            "track_id": per_song.index.to_numpy(dtype=object),
            "appeal": weighted / precision,
            "appeal_sd": np.sqrt(1.0 / precision),
            "n_events": per_song["n_events"].to_numpy(dtype="int64"),
            "n_listeners": per_song["n_listeners"].to_numpy(dtype="int64"),
            "like_rate": (per_song["likes"] / opinions.where(opinions > 0)).to_numpy(dtype=float),
            "rating_mean": (per_song["stars"] / ratings.where(ratings > 0)).to_numpy(dtype=float),
            "skip_rate": (1.0 - per_song["completes"] / listens.where(listens > 0)).to_numpy(dtype=float),
        }
    )
    logger.info("appeal: %d songs; priors (catalogue mean, strength) %s", len(result), priors)
    return result
