"""The Emotify dataset: its annotations table as events and its audio folder as tracks.

A. Aljanaki, F. Wiering, R. C. Veltkamp, "Studying emotion induced by music through a
crowdsourcing game", Information Processing & Management, 2016.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from encore.exceptions import FeedbackDataError
from encore.feedback.importers.events import CANONICAL_COLUMNS
from encore.feedback.importers.tables import read_table

__all__ = ["EMOTIFY_OFFSETS", "GEMS_EMOTIONS", "read_emotify_annotations", "read_emotify_tracks"]

GEMS_EMOTIONS: tuple[str, ...] = (
    "amazement",
    "solemnity",
    "tenderness",
    "nostalgia",
    "calmness",
    "power",
    "joyful_activation",
    "tension",
    "sadness",
)
"""The nine GEMS emotion columns of the Emotify annotations, in file order."""


def read_emotify_annotations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Converts the Emotify annotations file into canonical events.

    Each annotation row is one anonymous participant, ``listener_id`` ``emotify-<row>``
    (0-based data row), so agreement per song can still be computed. A row gives a
    ``play`` event of unknown length (the participant heard the excerpt and answered:
    it makes every participant count in the song's rates, also one who ticked
    nothing; appeal ignores plays of unknown length), a ``like`` or ``dislike`` event when ``liked`` / ``disliked`` is 1 and a ``tag`` event
    per GEMS emotion column that is 1 (tag text = the column name). All events share a
    fixed timestamp (the Unix epoch) and source ``"emotify"``.

    Args:
        path: ``annotations.csv`` (header names after the first start with a space).

    Returns:
        Columns ``track_id``, ``listener_id``, ``kind``, ``value``, ``timestamp``,
        ``source``, ready for :func:`import_feedback_frame`.

    Raises:
        FeedbackDataError: The file lacks the expected columns.
    """
    frame = read_table(path, format="csv")
    expected = ["track id", "liked", "disliked", *GEMS_EMOTIONS]
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise FeedbackDataError(
            f"{path}: not an Emotify annotations file, column(s) {missing} missing; columns found: {list(frame.columns)}"
        )
    track_ids = pd.to_numeric(frame["track id"], errors="coerce")
    if track_ids.isna().any():
        line = int(frame.index[track_ids.isna()][0])
        raise FeedbackDataError(f"{path}: line {line}: 'track id' is not a number")
    listener = [f"emotify-{row}" for row in range(len(frame))]
    base = pd.DataFrame({"track_id": track_ids.astype("int64").astype("str").to_numpy(), "listener_id": listener})
    parts = [base.assign(kind="play", value=None, order=-1)]
    for kind, column in (("like", "liked"), ("dislike", "disliked")):
        chosen = (pd.to_numeric(frame[column], errors="coerce") == 1).to_numpy()
        parts.append(base[chosen].assign(kind=kind, value="1", order=0))
    for order, emotion in enumerate(GEMS_EMOTIONS, start=1):
        chosen = (pd.to_numeric(frame[emotion], errors="coerce") == 1).to_numpy()
        parts.append(base[chosen].assign(kind="tag", value=emotion, order=order))
    events = pd.concat(parts)
    events["row"] = events.index
    events = events.sort_values(["row", "order"], kind="stable").drop(columns=["row", "order"])
    events["timestamp"] = pd.Timestamp(0, tz="UTC")
    events["source"] = "emotify"
    return events.reset_index(drop=True)[[name for name in CANONICAL_COLUMNS if name != "event_key"]]


EMOTIFY_OFFSETS = {"classical": 0, "rock": 100, "electronic": 200, "pop": 300}


def read_emotify_tracks(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The Emotify audio layout ``root/audio/<genre>/<n>.mp3`` as a track list.

    Track ids are those of ``annotations.csv`` (``n`` plus 0, 100, 200 or 300 for
    classical, rock, electronic, pop), so the listener annotations link to the audio;
    the genre becomes the ``label``. Artists are not given by the dataset.

    Raises:
        FeedbackDataError: ``root/audio`` holds no ``<genre>/<n>.mp3`` files.
    """
    root = Path(root)
    rows = []
    for genre, offset in EMOTIFY_OFFSETS.items():
        for file in sorted((root / "audio" / genre).glob("*.mp3")):
            if file.stem.isdigit():
                rows.append(
                    {
                        "track_id": str(int(file.stem) + offset),
                        "path": str(file.resolve()),
                        "title": f"{genre} {file.stem}",
                        "label": genre,
                    }
                )
    if not rows:
        raise FeedbackDataError(f"{root}: no audio/<genre>/<n>.mp3 files; is this the Emotify folder?")
    return pd.DataFrame(rows)
