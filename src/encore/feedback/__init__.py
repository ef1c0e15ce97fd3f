"""Listener feedback: the store, imports, and song targets built from it (no torch here).

The flow: :func:`import_tracks` and :func:`import_feedback` fill a :class:`Store`;
:func:`build_tag_targets`, :func:`derive_single_labels` and :func:`compute_appeal` turn
its events into per-song targets; :func:`split_by_artist` splits songs for training.
"""

from encore.feedback.appeal import compute_appeal
from encore.feedback.importers import (
    EVENT_KINDS,
    ImportReport,
    QuarantinedRow,
    import_feedback,
    import_feedback_frame,
    import_tracks,
    read_emotify_annotations,
    read_table,
)
from encore.feedback.labels import derive_single_labels, labels_from_catalogue
from encore.feedback.splits import split_by_artist
from encore.feedback.store import Store
from encore.feedback.tags import DEFAULT_STOP_TAGS, TagTargets, build_tag_targets, normalize_tag

__all__ = [
    "DEFAULT_STOP_TAGS",
    "EVENT_KINDS",
    "ImportReport",
    "QuarantinedRow",
    "Store",
    "TagTargets",
    "build_tag_targets",
    "compute_appeal",
    "derive_single_labels",
    "import_feedback",
    "import_feedback_frame",
    "import_tracks",
    "labels_from_catalogue",
    "normalize_tag",
    "read_emotify_annotations",
    "read_table",
    "split_by_artist",
]
