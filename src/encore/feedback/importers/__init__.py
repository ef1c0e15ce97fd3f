"""Reading feedback exports and track lists into the store.

Two entry points, :func:`import_feedback` for listener events and :func:`import_tracks`
for the catalogue, and readers for named real-world exports that turn them into the
canonical tables those take: the Emotify annotations and audio layout
(:mod:`.emotify`), Last.fm HetRec 2011 (:mod:`.lastfm`) and a Spotify
streaming-history export (:mod:`.spotify`). Every import follows one rule: a file that
cannot be read as a whole raises :class:`~encore.exceptions.FeedbackDataError` with the
fix; a single bad row is quarantined (file, line, reason, raw text) and the rest goes
in. Every quarantined row is also written to the store's ``quarantine`` table.
"""

from encore.feedback.importers.emotify import GEMS_EMOTIONS, read_emotify_annotations, read_emotify_tracks
from encore.feedback.importers.events import CANONICAL_COLUMNS, import_feedback, import_feedback_frame
from encore.feedback.importers.lastfm import import_lastfm, read_lastfm_play_counts, read_lastfm_tags, read_lastfm_tracks
from encore.feedback.importers.spotify import import_spotify, read_spotify_history, read_spotify_tracks
from encore.feedback.importers.tables import FORMATS, ImportReport, read_table
from encore.feedback.importers.tracks import AUDIO_SUFFIXES, LAYOUTS, import_tracks
from encore.store.schema import EVENT_KINDS, QuarantinedRow

__all__ = [
    "AUDIO_SUFFIXES",
    "CANONICAL_COLUMNS",
    "EVENT_KINDS",
    "FORMATS",
    "GEMS_EMOTIONS",
    "ImportReport",
    "LAYOUTS",
    "QuarantinedRow",
    "import_feedback",
    "import_feedback_frame",
    "import_lastfm",
    "import_spotify",
    "import_tracks",
    "read_emotify_annotations",
    "read_emotify_tracks",
    "read_lastfm_play_counts",
    "read_lastfm_tags",
    "read_lastfm_tracks",
    "read_spotify_history",
    "read_spotify_tracks",
    "read_table",
]
