"""Catalogue label sets in the store: several named, versioned label sets side by side.

:class:`CatalogueMixin` is part of :class:`~encore.store.Store`: an editorial
genre list and a folder-per-label set (say) live side by side for the same songs, each
revision a new version, so an old manifest's labels can always be rebuilt.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from encore.exceptions import ParameterError
from encore.store import schema
from encore.store.engine import Database
from encore.store.dbvalues import object_values, require_columns, text_column

__all__ = ["CatalogueMixin"]

logger = logging.getLogger(__name__)


class CatalogueMixin(Database):
    """Label-set methods of :class:`~encore.store.Store`."""

    def add_catalogue_labels(
        self,
        label_set: str,
        labels: pd.DataFrame,
        *,
        version: int | None = None,
    ) -> int:
        """Stores one version of a named catalogue label set.

        Args:
            label_set: Name of the set, e.g. ``"catalogue"`` or ``"folder"``.
            labels: Columns ``track_id`` and ``label``; a track may have several labels.
                Rows with an empty label are skipped.
            version: Version to write into; ``None`` writes a new version, one above the
                set's latest (1 for a new set).

        Returns:
            How many labels were stored (labels already in that version are not counted).

        Raises:
            ParameterError: ``label_set`` is empty or ``version`` is not a positive integer.
            FeedbackDataError: A required column is missing.
            StoreError: The write fails, e.g. a ``track_id`` is not in the tracks table.
        """
        if not isinstance(label_set, str) or not label_set.strip():
            raise ParameterError(f"label_set={label_set!r} must be a non-empty name, e.g. 'catalogue'")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1):
            raise ParameterError(f"version={version!r} must be a positive integer, or None for a new version")
        require_columns(labels, ["track_id", "label"], "add_catalogue_labels")
        track_ids = text_column(labels, "track_id")
        names = text_column(labels, "label")
        keep = track_ids.notna() & (track_ids != "") & names.notna() & (names != "")
        pairs = pd.DataFrame({"track_id": track_ids[keep], "label": names[keep]}).drop_duplicates()
        if version is None:
            version = self.latest_version(label_set) + 1
        columns = {
            "label_set": np.full(len(pairs), label_set, dtype=object),
            "version": np.full(len(pairs), int(version), dtype=object),
            "track_id": object_values(pairs["track_id"]),
            "label": object_values(pairs["label"]),
        }
        stored = self._bulk_insert(
            schema.catalogue_labels,
            ["label_set", "version", "track_id", "label"],
            columns,
            f"version {version} of label set {label_set!r}",
        )
        logger.info("label set %r version %d: stored %d labels", label_set, version, stored)
        return stored

    def label_sets(self) -> dict[str, list[int]]:
        """The stored label sets and their versions, e.g. ``{"folder": [1, 2]}``."""
        table = schema.catalogue_labels
        statement = select(table.c.label_set, table.c.version).distinct().order_by(table.c.label_set, table.c.version)
        sets: dict[str, list[int]] = {}
        for name, version in self._read(statement, "the label sets"):
            sets.setdefault(name, []).append(int(version))
        return sets

    def latest_version(self, label_set: str) -> int:
        """The newest version of ``label_set``, or 0 when the set does not exist."""
        table = schema.catalogue_labels
        statement = select(func.max(table.c.version)).where(table.c.label_set == label_set)
        latest = self._read(statement, "the label set's versions")[0][0]
        return int(latest or 0)

    def catalogue_labels(self, label_set: str, version: int | None = None) -> pd.DataFrame:
        """One version of a catalogue label set.

        Args:
            label_set: Name of the set.
            version: Version to read; the latest when ``None``.

        Returns:
            Columns ``track_id``, ``label``, ordered by track then label.

        Raises:
            ParameterError: The set, or that version of it, does not exist; the message
                lists what does.
        """
        sets = self.label_sets()
        if label_set not in sets:
            raise ParameterError(f"label_set={label_set!r} not in the store; stored sets: {sorted(sets) or 'none'}")
        if version is None:
            version = max(sets[label_set])
        elif version not in sets[label_set]:
            raise ParameterError(
                f"version={version} of label set {label_set!r} not in the store; stored versions: {sets[label_set]}"
            )
        table = schema.catalogue_labels
        statement = (
            select(table.c.track_id, table.c.label)
            .where(table.c.label_set == label_set, table.c.version == version)
            .order_by(table.c.track_id, table.c.label)
        )
        return pd.DataFrame(self._read(statement, "the catalogue labels"), columns=["track_id", "label"])
