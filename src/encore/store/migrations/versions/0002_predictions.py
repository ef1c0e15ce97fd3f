"""Model predictions per run and track.

``predictions`` holds what a model run said about a track: a class probability, a tag
probability or a score. ``track_id`` has no foreign key, since predicted songs need not
be in the catalogue. A rerun of one run on one track replaces its rows
(unique ``run_id, track_id, kind, name``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("track_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, comment="class, tag or score"),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "track_id", "kind", "name", name="uq_prediction"),
    )
    op.create_index("ix_predictions_track_id", "predictions", ["track_id"])


def downgrade() -> None:
    op.drop_index("ix_predictions_track_id", table_name="predictions")
    op.drop_table("predictions")
