"""A labelling queue: unlabelled songs with predicted labels, most uncertain first.

The queue is a CSV a person fills in. Its columns are those ``encore feedback import``
reads, so the filled file goes back into the store like any other feedback: each row is
a ``tag`` event by the labeller (``listener_id``) on the song, with the class written in
the empty ``label`` column::

    encore feedback import queue.csv -w WS --map value=label

Rows left empty are reported as quarantined ("empty tag text") and store nothing; the
filled ones become tag votes that ``encore labels`` turns into class labels (one vote
per labeller: see ``labels.min_votes``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.data.manifest import Manifest
from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = ["QUEUE_COLUMNS", "UNCERTAINTY", "build_label_queue", "uncertainty", "unlabelled_tracks", "write_label_queue"]

UNCERTAINTY = ("entropy", "margin")
QUEUE_COLUMNS = (
    "rank",
    "track_id",
    "artist",
    "title",
    "path",
    "predicted",
    "confidence",
    "margin",
    "entropy",
    "listener_id",
    "kind",
    "timestamp",
    "label",
)


def uncertainty(probs: np.ndarray, *, by: str = "entropy") -> np.ndarray:
    """Uncertainty per song, higher first to label.

    Args:
        probs: Class probabilities, shape ``(n_songs, n_classes)``.
        by: ``entropy`` (normalised by ``log n_classes``, in [0, 1]) or ``margin``
            (``1 - (p_top - p_second)``, in [0, 1]).

    Raises:
        ParameterError: unknown ``by`` or bad shape.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ParameterError(f"probs has shape {p.shape}; need (n_songs, n_classes) with at least two classes")
    if by == "entropy":
        safe = np.clip(p, 1e-12, 1.0)
        return -(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1])
    if by == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    raise ParameterError(f"by={by!r} is unknown; use one of {list(UNCERTAINTY)}")


def unlabelled_tracks(tracks: pd.DataFrame, manifest: Manifest | None) -> pd.DataFrame:
    """Store tracks with no class label in ``manifest`` (or missing from it)."""
    if manifest is None:
        return tracks.reset_index(drop=True)
    frame = manifest.frame
    labelled = set(frame.loc[frame["label"].notna(), "track_id"]) if "label" in frame else set()
    return tracks[~tracks["track_id"].isin(labelled)].reset_index(drop=True)


def build_label_queue(
    predictor: Any,
    songs: pd.DataFrame,
    waveforms: Sequence[np.ndarray],
    *,
    by: str = "entropy",
    labeller: str = "labeller",
    limit: int | None = None,
    timestamp: datetime | None = None,
) -> pd.DataFrame:
    """Predict each song's class and rank the songs by uncertainty.

    Args:
        predictor: A CNN or forest predictor with a class head.
        songs: ``track_id`` and optionally ``artist``, ``title``, ``path``; one row per waveform.
        waveforms: The songs at ``predictor.sample_rate``.
        by: ``entropy`` or ``margin`` (see :func:`uncertainty`).
        labeller: ``listener_id`` written on every row (one queue per person).
        limit: Keep only the most uncertain songs.
        timestamp: Written on every row (default now, UTC).

    Returns:
        The queue, :data:`QUEUE_COLUMNS`, ``label`` empty, most uncertain first.

    Raises:
        ParameterError: no class head, mismatched lengths, empty labeller or bad ``limit``.
    """
    if not predictor.label_names:
        raise ParameterError("the run has no class head; a labelling queue needs a model that predicts classes")
    if len(songs) != len(waveforms):
        raise ParameterError(f"got {len(songs)} song rows but {len(waveforms)} waveforms; give one waveform per row")
    if not str(labeller).strip():
        raise ParameterError("labeller is empty; give the name of the person filling the queue, e.g. --labeller alice")
    if limit is not None and limit < 1:
        raise ParameterError(f"limit={limit} must be a positive number of songs")
    columns = list(QUEUE_COLUMNS)
    if len(songs) == 0:
        return pd.DataFrame(columns=columns)
    probs = predictor.predict_arrays(list(waveforms))["class_probs"]
    score = uncertainty(probs, by=by)
    top2 = np.sort(probs, axis=1)[:, -2:]
    when = (timestamp or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
    queue = pd.DataFrame(
        {
            "track_id": songs["track_id"].astype(str).to_numpy(),
            "artist": songs["artist"].to_numpy() if "artist" in songs else None,
            "title": songs["title"].to_numpy() if "title" in songs else None,
            "path": songs["path"].to_numpy() if "path" in songs else None,
            "predicted": [predictor.label_names[i] for i in probs.argmax(axis=1)],
            "confidence": probs.max(axis=1).round(4),
            "margin": (top2[:, 1] - top2[:, 0]).round(4),
            "entropy": uncertainty(probs, by="entropy").round(4),
            "listener_id": str(labeller).strip(),
            "kind": "tag",
            "timestamp": when,
            "label": "",
        }
    )
    order = np.lexsort((queue["track_id"].to_numpy(), -score))  # most uncertain first, ties by track id
    queue = queue.iloc[order].reset_index(drop=True)
    if limit is not None:
        queue = queue.head(limit)
    queue.insert(0, "rank", np.arange(1, len(queue) + 1))
    return queue[columns]


def write_label_queue(queue: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the queue as UTF-8 CSV (the folder is created)."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise ParameterError(f"--out {str(path)!r} is a folder; give a file name such as queue.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    queue.to_csv(path, index=False)
    logger.info("wrote a labelling queue of %d songs to %s", len(queue), path)
    return path
