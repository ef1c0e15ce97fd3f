"""Listener feedback: its importers, and the face of the store and the targets (no torch here).

The importers live here (:mod:`encore.feedback.importers`); the store is
:mod:`encore.store` and the target maths :mod:`encore.targets`, whose main names this
package re-exports so ``from encore.feedback import Store, build_tag_targets`` keeps
working. The flow: :func:`import_tracks` and :func:`import_feedback` (or a named export's
importer: Emotify, :func:`import_lastfm`, :func:`import_spotify`) fill a :class:`Store`;
:func:`build_tag_targets`, :func:`derive_single_labels` and :func:`compute_appeal` turn
its events into per-song targets, :func:`split_half_reliability` says how far they can
be trusted; :func:`split_by_artist` and :func:`kfold_by_artist` split songs for training.
"""

from encore.feedback.importers import (
    EVENT_KINDS,
    ImportReport,
    QuarantinedRow,
    import_feedback,
    import_feedback_frame,
    import_lastfm,
    import_spotify,
    import_tracks,
    read_emotify_annotations,
    read_table,
)
from encore.store import Store
from encore.targets import (
    DEFAULT_STOP_TAGS,
    TagTargets,
    build_tag_targets,
    compute_appeal,
    derive_single_labels,
    kfold_by_artist,
    labels_from_catalogue,
    listener_responses,
    normalize_tag,
    skip_rates,
    song_rates,
    split_by_artist,
    split_half_reliability,
    tag_vocabulary,
)

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
    "import_lastfm",
    "import_spotify",
    "import_tracks",
    "kfold_by_artist",
    "labels_from_catalogue",
    "listener_responses",
    "normalize_tag",
    "read_emotify_annotations",
    "read_table",
    "skip_rates",
    "song_rates",
    "split_by_artist",
    "split_half_reliability",
    "tag_vocabulary",
]
