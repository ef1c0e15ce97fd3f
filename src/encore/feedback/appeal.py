"""Listener appeal per song: a Beta-Binomial score with its uncertainty.

Each feedback event is (fractional) evidence that listeners like the song:

========  =============================================  ===================
kind      success fraction                               weight
========  =============================================  ===================
like      1                                              :data:`EXPLICIT_WEIGHT`
dislike   0                                              :data:`EXPLICIT_WEIGHT`
rating    ``(stars - 1) / 4``: 5 stars 1, 3 stars 0.5    :data:`EXPLICIT_WEIGHT`
play      1 if complete, 0 if short (a skip)             :data:`IMPLICIT_WEIGHT`
skip      0                                              :data:`IMPLICIT_WEIGHT`
========  =============================================  ===================

A play is short when it lasted less than ``min(skip_ms, skip_fraction * duration)``
where the song's duration is known, else less than ``skip_ms``. Per song the weighted
successes ``a`` and failures ``b`` update a Beta prior centred on the catalogue-wide
rate ``m`` with ``prior_strength`` pseudo-events: ``Beta(s m + a, s (1 - m) + b)``. The
posterior mean is the appeal, its standard deviation the uncertainty, so a song with
two likes ranks below one with forty likes and a dislike, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError

__all__ = ["APPEAL_COLUMNS", "EXPLICIT_WEIGHT", "IMPLICIT_WEIGHT", "compute_appeal"]

logger = logging.getLogger(__name__)

EXPLICIT_WEIGHT = 1.0
"""Weight of a like, dislike or rating: the listener told us."""

IMPLICIT_WEIGHT = 0.25
"""Weight of a play or skip: behaviour is noisier (a skip may mean "not now", a full
play may be background listening), so four plays count as much as one like."""

APPEAL_COLUMNS: tuple[str, ...] = ("track_id", "appeal", "appeal_sd", "n_events", "like_rate", "skip_rate")

_APPEAL_KINDS = ("like", "dislike", "rating", "play", "skip")


def _latest_opinions(events: pd.DataFrame) -> pd.DataFrame:
    """Keeps each named listener's latest like/dislike and latest rating per song.

    A listener who liked and later disliked a song, or re-rated it, counts once with
    their latest opinion; plays and skips all count, and so do anonymous events.
    """
    if "listener_id" not in events.columns:
        return events
    named = events["listener_id"].notna() & events["kind"].isin(["like", "dislike", "rating"])
    if not named.any():
        return events
    opinions = events[named].assign(group=np.where(events.loc[named, "kind"] == "rating", "rating", "opinion"))
    if "timestamp" in opinions.columns:
        opinions = opinions.sort_values("timestamp", kind="stable")
    latest = opinions.drop_duplicates(["track_id", "listener_id", "group"], keep="last").drop(columns="group")
    return pd.concat([events[~named], latest]).sort_index()


def compute_appeal(
    events: pd.DataFrame,
    *,
    durations: Mapping[str, float] | None = None,
    skip_ms: float = 30000.0,
    skip_fraction: float = 0.3,
    prior_strength: float = 2.0,
) -> pd.DataFrame:
    """Scores each song's listener appeal with a Beta-Binomial model.

    Args:
        events: Feedback events with ``track_id``, ``kind`` and ``value_num`` (stars for
            ratings, milliseconds for plays); ``listener_id`` and ``timestamp`` are used
            when present to keep each listener's latest opinion. Tags are ignored.
        durations: Song duration in seconds per ``track_id``, for the short-play rule.
        skip_ms: A play shorter than this (milliseconds) is a skip.
        skip_fraction: With a known duration, a play shorter than this fraction of the
            song is a skip too (the threshold is the smaller of the two).
        prior_strength: Pseudo-events of the prior centred on the catalogue-wide rate;
            larger values pull songs with little evidence harder towards it.

    Returns:
        One row per song with appeal evidence, ordered by ``track_id``: ``track_id``,
        ``appeal`` (posterior mean in [0, 1]), ``appeal_sd`` (posterior standard
        deviation), ``n_events`` (events used), ``like_rate`` (likes over likes plus
        dislikes, NaN without either), ``skip_rate`` (skips and short plays over all
        plays and skips, NaN without either).

    Raises:
        ParameterError: An option is out of range or ``events`` lacks a needed column.
    """
    if not skip_ms > 0:
        raise ParameterError(f"skip_ms={skip_ms} must be a positive number of milliseconds")
    if not 0 < skip_fraction <= 1:
        raise ParameterError(f"skip_fraction={skip_fraction} must be in (0, 1]")
    if not prior_strength > 0:
        raise ParameterError(f"prior_strength={prior_strength} must be positive; 2 is a mild prior")
    value_column = "value_num" if "value_num" in events.columns else "value"
    missing = [name for name in ("track_id", "kind", value_column) if name not in events.columns]
    if missing:
        raise ParameterError(
            f"events lack column(s) {missing}; found {list(events.columns)}. Pass events as "
            "Store.events() returns them"
        )

    used = events[events["kind"].isin(_APPEAL_KINDS)].copy()
    used["track_id"] = used["track_id"].astype("str")
    used = _latest_opinions(used)
    kind = used["kind"].to_numpy()
    value = pd.to_numeric(used[value_column], errors="coerce").to_numpy(dtype=float)

    threshold = np.full(len(used), float(skip_ms))
    if durations:
        seconds = used["track_id"].map(dict(durations)).astype(float).to_numpy()
        known = np.isfinite(seconds) & (seconds > 0)
        threshold[known] = np.minimum(skip_ms, skip_fraction * seconds[known] * 1000.0)
    short_play = (kind == "play") & (value < threshold)
    success = np.select(
        [kind == "like", kind == "dislike", kind == "rating", kind == "play", kind == "skip"],
        [1.0, 0.0, np.clip((value - 1.0) / 4.0, 0.0, 1.0), np.where(short_play, 0.0, 1.0), 0.0],
        default=np.nan,
    )
    success[(kind == "play") & np.isnan(value)] = np.nan  # a play of unknown length says nothing
    weight = np.where(np.isin(kind, ["play", "skip"]), IMPLICIT_WEIGHT, EXPLICIT_WEIGHT)
    evidence = pd.DataFrame(
        {
            "track_id": used["track_id"].to_numpy(),
            "success": success * weight,
            "failure": (1.0 - success) * weight,
            "like": kind == "like",
            "dislike": kind == "dislike",
            "listen": np.isin(kind, ["play", "skip"]),
            "skipped": (kind == "skip") | short_play,
        }
    )[~np.isnan(success)]
    if evidence.empty:
        return pd.DataFrame({name: pd.Series(dtype=object if name == "track_id" else float) for name in APPEAL_COLUMNS})

    per_song = evidence.groupby("track_id", sort=True).agg(
        success=("success", "sum"),
        failure=("failure", "sum"),
        n_events=("success", "size"),
        likes=("like", "sum"),
        dislikes=("dislike", "sum"),
        listens=("listen", "sum"),
        skips=("skipped", "sum"),
    )
    total = per_song["success"].sum() + per_song["failure"].sum()
    rate = float(np.clip(per_song["success"].sum() / total, 0.01, 0.99)) if total > 0 else 0.5
    alpha = prior_strength * rate + per_song["success"]
    beta = prior_strength * (1.0 - rate) + per_song["failure"]
    appeal = alpha / (alpha + beta)
    appeal_sd = np.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1.0)))
    opinions = per_song["likes"] + per_song["dislikes"]
    result = pd.DataFrame(
        {
            "track_id": per_song.index.to_numpy(dtype=object),
            "appeal": appeal.to_numpy(),
            "appeal_sd": appeal_sd.to_numpy(),
            "n_events": per_song["n_events"].to_numpy(dtype="int64"),
            "like_rate": (per_song["likes"] / opinions.where(opinions > 0)).to_numpy(dtype=float),
            "skip_rate": (per_song["skips"] / per_song["listens"].where(per_song["listens"] > 0)).to_numpy(dtype=float),
        }
    )
    logger.info("appeal: %d songs, catalogue-wide rate %.3f", len(result), rate)
    return result
