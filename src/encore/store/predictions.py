"""Model predictions in the store.

:class:`PredictionsMixin` is part of :class:`~encore.store.Store`; it is kept
in its own module so the store's import and label code stays readable. A prediction
row is what one model run said about one track: a class probability (``kind="class"``),
a tag probability (``"tag"``) or a score such as appeal (``"score"``). Writing a run's
predictions for a track replaces that run's earlier rows for the track, so rerunning
a prediction never duplicates. :class:`PredictionsMixin` is part of
:class:`~encore.store.Store`.

Example:
    >>> store.add_predictions(pd.DataFrame({"track_id": ["t1", "t1"], "kind": ["class", "score"],
    ...                                     "name": ["rock", "appeal"], "value": [0.9, 0.7]}),
    ...                       run_id="cnn")                          # doctest: +SKIP
    2
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import delete, select

from encore.exceptions import FeedbackDataError, ParameterError
from encore.store import schema
from encore.store.engine import Database
from encore.store.dbvalues import require_columns, text_column
from encore.store.schema import PREDICTION_KINDS

if TYPE_CHECKING:
    pass

__all__ = ["PREDICTION_COLUMNS", "PredictionsMixin"]

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = ("track_id", "run_id", "kind", "name", "value", "created_at")
_DELETE_CHUNK = 500  # track ids per DELETE ... IN (...), well under SQLite's variable limit


def _validated_predictions(frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """The rows to write: stripped text, finite values, the last of repeated keys."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise ParameterError(f"run_id={run_id!r} must be a non-empty name, e.g. the run folder's name")
    require_columns(frame, ["track_id", "kind", "name", "value"], "add_predictions")
    rows = pd.DataFrame({name: text_column(frame, name) for name in ("track_id", "kind", "name")})
    rows["kind"] = rows["kind"].str.lower()
    rows["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    for name in ("track_id", "name"):
        empty = rows[name].isna() | (rows[name] == "")
        if empty.any():
            raise FeedbackDataError(
                f"add_predictions: empty {name} in row {int(np.flatnonzero(empty)[0])}; every prediction needs one"
            )
    bad_kind = ~rows["kind"].isin(PREDICTION_KINDS)
    if bad_kind.any():
        unknown = sorted(set(rows["kind"][bad_kind].fillna("<missing>")))
        raise FeedbackDataError(f"add_predictions: unknown kind(s) {unknown}; use one of {list(PREDICTION_KINDS)}")
    bad_value = ~np.isfinite(rows["value"].to_numpy())
    if bad_value.any():
        first = frame["value"].iloc[int(np.flatnonzero(bad_value)[0])]
        raise FeedbackDataError(f"add_predictions: value {first!r} is not a finite number; give probabilities or scores")
    return rows.drop_duplicates(["track_id", "kind", "name"], keep="last")


class PredictionsMixin(Database):
    """Prediction and summary methods of :class:`~encore.store.Store`."""

    def add_predictions(self, frame: pd.DataFrame, *, run_id: str) -> int:
        """Stores one run's predictions, replacing the run's earlier rows for these tracks.

        Every existing row of ``(run_id, track_id)`` for a track in ``frame`` is deleted
        and the new rows written, in one transaction: a rerun replaces, never duplicates,
        and a reader sees either the old or the new predictions of a track.

        Args:
            frame: Columns ``track_id``, ``kind`` (``class``, ``tag`` or ``score``),
                ``name`` (class, tag or score name) and ``value`` (a finite number).
                Tracks need not be in the catalogue. A repeated (track, kind, name)
                keeps its last row.
            run_id: The model run that made the predictions, e.g. ``"cnn"``.

        Returns:
            How many prediction rows were written.

        Raises:
            ParameterError: ``run_id`` is empty.
            FeedbackDataError: A column is missing, a kind is unknown, a value is not a
                finite number, or a track id or name is empty.
            StoreError: The write fails; nothing of the call is stored then.
        """
        rows = _validated_predictions(frame, run_id)
        if rows.empty:
            return 0
        run_id = run_id.strip()
        table = schema.predictions
        now = datetime.now(timezone.utc)
        records = [
            {"track_id": t, "run_id": run_id, "kind": k, "name": n, "value": float(v), "created_at": now}
            for t, k, n, v in rows[["track_id", "kind", "name", "value"]].itertuples(index=False, name=None)
        ]
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql  # one upsert API, typed apart
        statement = dialect.insert(table)
        # A concurrent writer of the same run and track may insert between our delete
        # and insert: the upsert makes the last writer win instead of failing.
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "track_id", "kind", "name"],
            set_={"value": statement.excluded.value, "created_at": statement.excluded.created_at},
        )
        track_ids = sorted(rows["track_id"].unique())
        with self._connected("write", "the predictions") as conn:
            for start in range(0, len(track_ids), _DELETE_CHUNK):
                chunk = track_ids[start : start + _DELETE_CHUNK]
                conn.execute(delete(table).where(table.c.run_id == run_id, table.c.track_id.in_(chunk)))
            conn.execute(statement, records)
        logger.debug("run %s: stored %d predictions for %d tracks", run_id, len(records), len(track_ids))
        return len(records)

    def predictions(self, *, track_id: str | None = None, run_id: str | None = None) -> pd.DataFrame:
        """Stored predictions, optionally of one track and/or one run.

        Args:
            track_id: Only this track's predictions.
            run_id: Only this run's predictions.

        Returns:
            Columns ``track_id``, ``run_id``, ``kind``, ``name``, ``value``,
            ``created_at`` (UTC), ordered by run, track, kind and name.
        """
        table = schema.predictions
        statement = select(*(table.c[name] for name in PREDICTION_COLUMNS))
        if track_id is not None:
            statement = statement.where(table.c.track_id == str(track_id))
        if run_id is not None:
            statement = statement.where(table.c.run_id == str(run_id))
        statement = statement.order_by(table.c.run_id, table.c.track_id, table.c.kind, table.c.name)
        frame = pd.DataFrame(self._read(statement, "the predictions"), columns=list(PREDICTION_COLUMNS))
        frame["value"] = frame["value"].astype(float)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame
