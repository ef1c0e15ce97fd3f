"""From a command's RUN to a predictor: the one run loader.

The CLI (``predict``, ``evaluate``, ``explain``, ``export``, ``suggest``), the service and
evaluation all find a run with :func:`resolve_run` (a run folder, a ``checkpoint.pt`` or
``.onnx`` file, a name under the workspace's ``runs/``, or ``pretrained:NAME``) and load it
with :func:`load_run` or :func:`load_predictor`, which read what the folder holds: a CNN
checkpoint, an exported ONNX file, a classical model's card and estimators, or a blend's
card and its member run folders. A run's id
(the ``run_id`` its stored predictions carry) is its folder's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from encore.exceptions import CheckpointError
from encore.inference.baseline import BaselinePredictor
from encore.inference.blend import BLEND_CARD, BlendPredictor
from encore.inference.interface import SongPredictor
from encore.inference.predictor import DEFAULT_BACKEND, Predictor
from encore.pretrained.store import resolve_run

__all__ = ["LoadedRun", "load_predictor", "load_run", "resolve_run", "run_folder"]


def run_folder(path: str | os.PathLike) -> Path:
    """The run folder of a resolved run: the folder itself, or the folder of a ``checkpoint.pt`` or ``.onnx`` file."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def _read_predictor(path: Path, *, backend: str, device: str) -> SongPredictor:
    if path.is_file() and path.suffix == ".onnx":
        return Predictor.from_onnx(path)
    if path.is_file() or (path / "checkpoint.pt").is_file():
        return Predictor.from_checkpoint(path, backend=backend, device=device)
    if (path / "model_card.json").is_file():
        return BaselinePredictor.from_run(path)
    if (path / BLEND_CARD).is_file():
        return BlendPredictor.from_run(path, load_member=lambda folder: _read_predictor(folder, backend=backend, device=device))
    raise CheckpointError(
        f"{path} holds no checkpoint.pt (CNN), model_card.json (classical model) or {BLEND_CARD} (blend); pass a run folder"
    )


@dataclass(frozen=True)
class LoadedRun:
    """A run's predictor and where it was found.

    Attributes:
        predictor: The CNN's :class:`Predictor`, the classical model's :class:`BaselinePredictor` or a
            blend's :class:`~encore.inference.blend.BlendPredictor`.
        path: What the run resolved to: its folder, ``checkpoint.pt`` or ``.onnx`` file.
    """

    predictor: SongPredictor
    path: Path

    @property
    def folder(self) -> Path:
        """The run folder (reports, ``evaluation-*.json`` and ``model.onnx`` go there)."""
        return run_folder(self.path)

    @property
    def run_id(self) -> str:
        """The run's name, under which its predictions are stored."""
        return self.folder.name


def load_run(
    run: str | os.PathLike,
    workspace: str | os.PathLike | None = None,
    *,
    backend: str = DEFAULT_BACKEND,
    device: str = "auto",
) -> LoadedRun:
    """Find a run (:func:`resolve_run`) and load its predictor.

    Args:
        run: A run folder, ``checkpoint.pt`` or ``.onnx`` file, a run name under the
            workspace's ``runs/``, or ``pretrained:NAME``.
        workspace: The workspace for run names (default: ``$ENCORE_WORKSPACE`` or the
            current folder).
        backend: For CNN runs, ``"torch"`` (default), ``"onnx"`` or ``"eager"``.
        device: For CNN runs, ``auto`` (a CUDA GPU when present), ``cpu``, ``cuda`` or
            ``cuda:N``; a classical model runs on the CPU.

    Raises:
        CheckpointError: The folder holds no model, or its checkpoint is damaged.
        WorkspaceError: A name that is neither a path nor a run of the workspace.
    """
    path = resolve_run(run, workspace)
    return LoadedRun(_read_predictor(path, backend=backend, device=device), path)


def load_predictor(
    run: str | os.PathLike,
    workspace: str | os.PathLike | None = None,
    *,
    backend: str = DEFAULT_BACKEND,
    device: str = "auto",
) -> SongPredictor:
    """The predictor of a run, as :func:`load_run` finds and loads it."""
    return load_run(run, workspace, backend=backend, device=device).predictor
