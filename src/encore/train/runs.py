"""Training runs inside a workspace: decode the manifest's songs once, then fit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from encore.config import EncoreConfig
from encore.data.manifest import Manifest
from encore.data.waveforms import DecodeFailure, load_waveforms
from encore.features.cache import FeatureCache
from encore.workspace import Workspace

logger = logging.getLogger(__name__)

__all__ = ["decode_manifest", "train_run"]

ModelKind = Literal["cnn", "random_forest", "gradient_boosting"]


def decode_manifest(
    manifest: Manifest, ws: Workspace, *, sample_rate: int, callback: Callable[[int], None] | None = None
) -> tuple[dict[str, np.ndarray | None], list[DecodeFailure]]:
    """Every song of the manifest decoded at ``sample_rate`` through the workspace cache."""
    frame = manifest.frame
    waveforms, failures = load_waveforms(
        list(frame["path"]), sample_rate=sample_rate, cache=FeatureCache(ws.cache_dir), callback=callback
    )
    return dict(zip(frame["track_id"], waveforms, strict=True)), failures


def train_run(
    ws: Workspace,
    config: EncoreConfig,
    *,
    kind: ModelKind = "cnn",
    manifest_path: str | Path | None = None,
    name: str | None = None,
    run_dir: str | Path | None = None,
    waveforms: dict[str, np.ndarray | None] | None = None,
    decode_callback: Callable[[int], None] | None = None,
    epoch_callback: Callable[[dict], None] | None = None,
) -> Path:
    """Train one model on a workspace manifest; returns the run folder.

    Args:
        ws: The workspace.
        config: Resolved configuration.
        kind: ``cnn``, ``random_forest`` or ``gradient_boosting`` (sets ``baseline.estimator``).
        manifest_path: Default ``manifests/default.csv``.
        name: Run name under ``runs/`` (default the model kind); ignored with ``run_dir``.
        run_dir: Resume or write this run folder explicitly.
        waveforms: Already-decoded songs by track id (else decoded here).
    """
    manifest_path = Path(manifest_path) if manifest_path else ws.manifest_path()
    manifest = Manifest.read(manifest_path)
    if waveforms is None:
        waveforms, failures = decode_manifest(manifest, ws, sample_rate=config.features.sample_rate, callback=decode_callback)
        for failure in failures:
            logger.warning("song skipped: %s (%s)", failure.path, failure.reason)
    out = Path(run_dir) if run_dir else ws.new_run_dir(name or kind)
    if kind == "cnn":
        from encore.train.loop import fit

        fit(manifest, waveforms, config, out, manifest_path=str(manifest_path), callback=epoch_callback)
    elif kind in ("random_forest", "gradient_boosting"):
        from encore.train.baseline import fit_baseline

        config = config.model_copy(update={"baseline": config.baseline.model_copy(update={"estimator": kind})})
        fit_baseline(manifest, waveforms, config, out, manifest_path=str(manifest_path), cache=FeatureCache(ws.cache_dir))
    else:
        from encore.exceptions import ParameterError

        raise ParameterError(f"--model {kind!r} must be cnn, random_forest or gradient_boosting")
    return out
