"""Tables of the feedback store and the small records that travel between its modules.

The store keeps five tables (SQLAlchemy Core, so the same definitions serve SQLite and
PostgreSQL):

- ``tracks``: one row per song the catalogue knows, keyed by ``track_id``.
- ``catalogue_labels``: named, versioned label sets side by side (``label_set``,
  ``version``, ``track_id``, ``label``), so a genre set from folder names and a curated
  mood set can coexist and be revised without losing the old version.
- ``feedback_events``: one row per listener event (rating, like, dislike, play, skip,
  tag). ``event_key`` is the SHA-256 of the normalised event and is unique, which makes
  importing the same export twice a no-op.
- ``quarantine``: rows an import could not accept, with the file, line, reason and the
  raw text, so nothing is dropped silently.
- ``predictions``: what a model run said about a track (a class or tag probability, a
  score), unique per ``run_id, track_id, kind, name``; ``track_id`` has no foreign key
  because predicted songs need not be in the catalogue.

Schema changes go through the Alembic migrations in :mod:`encore.store.migrations`:
edit these tables *and* add a revision file there (a test fails when the two differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "EVENT_KINDS",
    "PREDICTION_KINDS",
    "QuarantinedRow",
    "catalogue_labels",
    "feedback_events",
    "metadata",
    "predictions",
    "quarantine",
    "tracks",
]

EVENT_KINDS: tuple[str, ...] = ("rating", "like", "dislike", "play", "skip", "tag", "play_count")
"""Kinds of feedback event the store accepts. ``play`` and ``skip`` values are
milliseconds listened; ``rating`` values are stars in 1..5; ``tag`` values are text;
``play_count`` values are how often a listener played the track in all (exports such
as Last.fm's give totals, not single plays). A count measures exposure, not appeal, so
appeal scores leave it out."""

PREDICTION_KINDS: tuple[str, ...] = ("class", "tag", "score")
"""Kinds of prediction: a class probability, a tag probability, or a score such as appeal."""

metadata = MetaData()

tracks = Table(
    "tracks",
    metadata,
    Column("track_id", String, primary_key=True),
    Column("path", Text, nullable=True),
    Column("artist", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("duration", Float, nullable=True, comment="seconds"),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

catalogue_labels = Table(
    "catalogue_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("label_set", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("track_id", String, ForeignKey("tracks.track_id"), nullable=False),
    Column("label", String, nullable=False),
    UniqueConstraint("label_set", "version", "track_id", "label", name="uq_catalogue_label"),
)

feedback_events = Table(
    "feedback_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(64), nullable=False, unique=True),
    Column("track_id", String, ForeignKey("tracks.track_id"), nullable=False),
    Column("listener_id", String, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("value_num", Float, nullable=True),
    Column("value_text", Text, nullable=True),
    Column("timestamp", DateTime(timezone=True), nullable=False, comment="UTC"),
    Column("source", String, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_file", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("track_id", String, nullable=False),
    Column("run_id", String, nullable=False),
    Column("kind", String(16), nullable=False, comment="class, tag or score"),
    Column("name", String, nullable=False),
    Column("value", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "track_id", "kind", "name", name="uq_prediction"),
    Index("ix_predictions_track_id", "track_id"),
)


@dataclass(frozen=True)
class QuarantinedRow:
    """One input row an import set aside instead of storing.

    Attributes:
        source_file: The file (or folder) the row came from.
        line: 1-based line in that file; for CSV the header is line 1, for Parquet it
            is the 1-based row number.
        reason: Why the row was set aside, naming the bad value.
        raw: The row as text, so it can be fixed and re-imported.
    """

    source_file: str
    line: int
    reason: str
    raw: str
