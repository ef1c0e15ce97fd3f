"""Summaries of the store's feedback computed in the database: one track, or every track's appeal evidence.

:class:`SummariesMixin` is part of :class:`~encore.store.Store`.
:meth:`~SummariesMixin.appeal_evidence` aggregates in SQL (one ``GROUP BY`` over the
events), so appeal scores for ten million events need no Python object per event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Float, and_, case, distinct, func, literal, select

from encore.exceptions import ParameterError
from encore.store import schema
from encore.store.engine import Database
from encore.targets.appeal import EVIDENCE_COLUMNS, skip_thresholds
from encore.store.schema import EVENT_KINDS
from encore.targets.tags import DEFAULT_STOP_TAGS, prepare_tag_votes

if TYPE_CHECKING:
    pass

__all__ = ["SummariesMixin"]

logger = logging.getLogger(__name__)

TOP_TAGS = 10


class SummariesMixin(Database):
    """Summary methods of :class:`~encore.store.Store`."""

    def appeal_evidence(self, *, skip_ms: float = 30000.0, skip_fraction: float = 0.3) -> pd.DataFrame:
        """Every track's appeal evidence, aggregated in the database.

        The same table as :func:`~encore.targets.appeal.appeal_evidence`, with one
        difference: every like, dislike and rating counts, not only each listener's
        latest (exports rarely repeat opinions; the event-level path handles that).
        Feed it to :func:`~encore.targets.appeal.score_appeal`.

        Args:
            skip_ms: A play shorter than this (milliseconds) is a skip...
            skip_fraction: ...or shorter than this share of the track's known duration.

        Returns:
            Index ``track_id`` (sorted), the :data:`~encore.targets.appeal.EVIDENCE_COLUMNS`.

        Raises:
            ParameterError: An option is out of range.
            StoreError: The database cannot be read.
        """
        if not skip_ms > 0 or not 0 < skip_fraction <= 1:
            raise ParameterError(f"skip_ms={skip_ms} must be positive and skip_fraction={skip_fraction} in (0, 1]")
        events, tracks = schema.feedback_events, schema.tracks
        kind, value = events.c.kind, events.c.value_num
        sqlite = self.engine.dialect.name == "sqlite"
        smallest, largest = (func.min, func.max) if sqlite else (func.least, func.greatest)  # scalar, 2 arguments
        duration_ms = tracks.c.duration * 1000.0
        threshold = smallest(literal(float(skip_ms)), func.coalesce(duration_ms * skip_fraction, float(skip_ms)))

        def total(condition: Any, amount: Any = 1.0) -> Any:
            return func.sum(case((condition, amount), else_=0.0)).cast(Float)

        rating = and_(kind == "rating", value.is_not(None))
        success = smallest(largest((value - 1.0) / 4.0, 0.0), 1.0)
        listen = (kind == "skip") | and_(kind == "play", value.is_not(None))
        used = kind.in_(["like", "dislike"]) | rating | listen
        statement = (
            select(
                events.c.track_id,
                total(kind == "like").label("likes"),
                total(kind.in_(["like", "dislike"])).label("opinions"),
                total(rating, success).label("rating_success"),
                total(rating, success * success).label("rating_success_sq"),
                total(rating).label("ratings"),
                total(rating, value).label("stars"),
                total(and_(kind == "play", value.is_not(None), value >= threshold)).label("completes"),
                total(listen).label("listens"),
                func.count().label("n_events"),
                (func.count(distinct(events.c.listener_id)) + total(events.c.listener_id.is_(None))).label("n_listeners"),
            )
            .select_from(events.outerjoin(tracks, tracks.c.track_id == events.c.track_id))
            .where(used)
            .group_by(events.c.track_id)
            .order_by(events.c.track_id)
        )
        rows = self._read(statement, "the appeal evidence")
        frame = pd.DataFrame(rows, columns=["track_id", *EVIDENCE_COLUMNS]).set_index("track_id")
        frame = frame.astype(float)
        frame[["n_events", "n_listeners"]] = frame[["n_events", "n_listeners"]].astype("int64")
        return frame

    def track_summary(self, track_id: str, *, skip_ms: float = 30000.0, skip_fraction: float = 0.3) -> dict[str, Any]:
        """What listeners said about one track.

        Args:
            track_id: The track.
            skip_ms: A play shorter than this (milliseconds) counts as a skip...
            skip_fraction: ...or shorter than this share of the track, when its duration
                is known (the smaller threshold applies), as in
                :func:`~encore.targets.appeal.compute_appeal`.

        Returns:
            ``{"track_id", "in_catalogue", "n_events", "n_listeners", "counts"
            (events per kind, every kind listed), "like_rate" (likes over likes and
            dislikes), "mean_rating" (stars), "skip_rate" (skips and short plays over
            plays and skips), "top_tags" ([[tag, listeners], ...], normalised, stop tags
            dropped, at most 10)}``; a rate is None where there is no data for it.

        Raises:
            StoreError: The database cannot be read.
        """
        track_id = str(track_id)
        tracks, events_table = schema.tracks, schema.feedback_events
        found = self._read(select(tracks.c.duration).where(tracks.c.track_id == track_id), "the track's duration")
        columns = ["listener_id", "kind", "value_num", "value_text"]
        statement = select(*(events_table.c[name] for name in columns)).where(events_table.c.track_id == track_id)
        events = pd.DataFrame(self._read(statement, "the track's feedback"), columns=columns)
        kinds = events["kind"]
        counts = {kind: int((kinds == kind).sum()) for kind in EVENT_KINDS}
        likes, dislikes = counts["like"], counts["dislike"]
        ratings = pd.to_numeric(events.loc[kinds == "rating", "value_num"]).astype(float)
        known_length = (kinds == "skip") | ((kinds == "play") & pd.to_numeric(events["value_num"]).notna())
        listens = events[known_length]
        duration = found[0][0] if found else None
        threshold = skip_thresholds(
            np.full(len(listens), track_id, dtype=object),
            {track_id: float(duration)} if duration is not None else None,
            skip_ms=skip_ms,
            skip_fraction=skip_fraction,
        )
        played = pd.to_numeric(listens["value_num"]).astype(float).to_numpy()
        skipped = (listens["kind"].to_numpy() == "skip") | (played < threshold)
        top_tags: list[list[Any]] = []
        if counts["tag"]:
            votes, names = prepare_tag_votes(events.assign(track_id=track_id), stop_tags=DEFAULT_STOP_TAGS)
            per_tag = votes.groupby("key")["listener"].nunique()
            ranked = sorted(per_tag.items(), key=lambda item: (-item[1], names[item[0]]))[:TOP_TAGS]
            top_tags = [[names[key], int(n)] for key, n in ranked]
        return {
            "track_id": track_id,
            "in_catalogue": bool(found),
            "n_events": int(len(events)),
            "n_listeners": int(events["listener_id"].dropna().nunique()),
            "counts": counts,
            "like_rate": likes / (likes + dislikes) if likes + dislikes else None,
            "mean_rating": float(ratings.mean()) if len(ratings) else None,
            "skip_rate": float(skipped.mean()) if len(listens) else None,
            "top_tags": top_tags,
        }
