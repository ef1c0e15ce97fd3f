"""Batch prediction over a catalogue: shards, per-file errors, rows for the store.

``encore predict`` is a thin wrapper over these. A catalogue is split with
:func:`~encore.shards.select_shard` (``--shard i/n``: the i-th of n disjoint shards that
together cover the list), each file is predicted on its own so one undecodable file is reported
and skipped while the rest go on, and :func:`predictions_frame` turns a song's arrays
into the long rows :meth:`encore.store.Store.add_predictions` stores (which
replaces a run's earlier rows for the same track, so rerunning a shard never
duplicates).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.exceptions import AudioDecodeError
from encore.inference.interface import SongPredictor
from encore.shards import parse_shard, select_shard  # re-exported: the shard rule lives in encore.shards

logger = logging.getLogger(__name__)

__all__ = ["FileResult", "parse_shard", "predict_files", "predictions_frame", "select_shard"]


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: ``row`` (the JSON view) and ``arrays``, or ``error``."""

    path: Path
    row: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None


def predict_files(
    predictor: SongPredictor,
    paths: Iterable[str | os.PathLike],
    *,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> Iterator[FileResult]:
    """Predict each file; an undecodable one gives a result with ``error`` and the rest go on.

    Args:
        predictor: A CNN's :class:`~encore.inference.Predictor` or a classical model's
            :class:`~encore.inference.BaselinePredictor`.
        paths: Audio files.
        progress: Called with 1 after each file.
        workers: For a CNN, decode in this many worker processes while the model runs
            here on chunks of several songs at once (see :mod:`encore.inference.parallel`);
            0 decodes each file here, one after the other.
    """
    from encore.inference.predictor import Predictor

    if workers > 0 and isinstance(predictor, Predictor):
        from encore.inference.parallel import predict_sources_parallel

        files = [Path(p) for p in paths]
        for index, arrays, duration, error in predict_sources_parallel(predictor, files, workers=workers, progress=progress):
            if error is not None:
                logger.warning("skipped %s", error)
                yield FileResult(files[index], error=error)
            else:
                assert arrays is not None  # given whenever error is None
                row = {"path": str(files[index]), "duration": round(duration, 3), **predictor.describe(arrays)}
                yield FileResult(files[index], row=row, arrays=arrays)
        return
    for path in paths:
        path = Path(path)
        try:
            arrays, duration = predictor.predict_source(os.fspath(path))
        except AudioDecodeError as err:
            logger.info("skipped %s", err)  # the caller reports FileResult.error (the CLI prints it once)
            yield FileResult(path, error=str(err))
        else:
            row = {"path": str(path), "duration": round(duration, 3), **predictor.describe(arrays)}
            yield FileResult(path, row=row, arrays=arrays)
        if progress is not None:
            progress(1)


def predictions_frame(track_id: str, arrays: dict[str, np.ndarray], predictor: SongPredictor) -> pd.DataFrame:
    """Long rows ``track_id, kind, name, value`` for every class, tag and score of a song."""
    parts = []
    for key, kind, names in (
        ("class_probs", "class", predictor.label_names),
        ("tag_probs", "tag", predictor.tag_names),
        ("scores", "score", predictor.regression_names),
    ):
        if key in arrays and len(names):
            parts.append(pd.DataFrame({"kind": kind, "name": list(names), "value": np.asarray(arrays[key], dtype=float)}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["kind", "name", "value"])
    frame.insert(0, "track_id", track_id)
    return frame
