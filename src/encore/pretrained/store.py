"""The models folder and the one run resolver: a run folder, a run name or ``pretrained:NAME``."""

from __future__ import annotations

import os
from pathlib import Path

from encore.exceptions import CheckpointError

__all__ = ["PRETRAINED_PREFIX", "default_models_dir", "pretrained_path", "resolve_run"]

PRETRAINED_PREFIX = "pretrained:"
MODELS_DIR_ENV = "ENCORE_PRETRAINED_DIR"


def default_models_dir() -> Path:
    """``$ENCORE_PRETRAINED_DIR``, else ``$XDG_CACHE_HOME/encore/pretrained`` (``~/.cache/encore/pretrained``)."""
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "encore" / "pretrained"


def pretrained_path(name: str, models_dir: str | os.PathLike | None = None) -> Path:
    """The run folder of converted model ``name``; a :class:`CheckpointError` saying how to make it if missing."""
    from encore.pretrained.catalogue import pretrained_spec

    pretrained_spec(name)  # an unknown name says which are known
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    path = folder / name
    if not (path / "checkpoint.pt").is_file():
        raise CheckpointError(
            f"pretrained model {name!r} is not in the models folder {folder}; convert it once with "
            f"`encore pretrained convert {name}` (set {MODELS_DIR_ENV} to use another folder)"
        )
    return path


def resolve_run(run: str | os.PathLike, workspace: str | os.PathLike | None = None) -> Path:
    """The folder (or checkpoint file) a command's RUN argument names.

    Args:
        run: ``pretrained:NAME`` (a converted model in the models folder), an existing
            path (run folder, ``checkpoint.pt`` or ``.onnx``), or a run name under the
            workspace's ``runs/``.
        workspace: The workspace for run names (default: ``$ENCORE_WORKSPACE`` or the
            current folder).

    Raises:
        CheckpointError: A pretrained model that was not converted.
        WorkspaceError: A name that is neither a path nor a run.
    """
    text = str(run)
    if text.startswith(PRETRAINED_PREFIX):
        return pretrained_path(text[len(PRETRAINED_PREFIX) :])
    path = Path(text)
    if path.exists():
        return path
    from encore.exceptions import WorkspaceError
    from encore.workspace import Workspace

    try:
        ws = Workspace.open(workspace)
    except WorkspaceError as err:  # the user may have meant a path: say that it is not one either
        raise WorkspaceError(f"run {text!r} is not a file or folder, nor a run name: {err}") from None
    return ws.resolve_run(text)
