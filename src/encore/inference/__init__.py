"""Inference: :class:`Predictor` for CNN checkpoints, :class:`BaselinePredictor` for classical
models, :class:`BlendPredictor` for a blend of runs.

All satisfy :class:`SongPredictor`; :func:`load_run` and :func:`load_predictor` (in
:mod:`encore.inference.runs`) find a run and load the right one.
"""

from __future__ import annotations

from encore.inference.baseline import BaselinePredictor
from encore.inference.blend import BlendPredictor
from encore.inference.interface import SongPredictor
from encore.inference.predictor import Predictor
from encore.inference.runs import LoadedRun, load_predictor, load_run, resolve_run

__all__ = [
    "BaselinePredictor",
    "BlendPredictor",
    "LoadedRun",
    "Predictor",
    "SongPredictor",
    "load_predictor",
    "load_run",
    "resolve_run",
]
