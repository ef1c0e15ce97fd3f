"""``encore train``: train a CNN or the random-forest baseline on a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import ConfigOption, SetOption, WorkspaceOption, handle_errors, out, progress_bar, step
from encore.config import load_config
from encore.data.manifest import Manifest
from encore.train.runs import decode_manifest, train_run
from encore.workspace import Workspace


@handle_errors
def train_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    model: Annotated[str, typer.Option(help="cnn or random_forest.")] = "cnn",
    manifest: Annotated[Path | None, typer.Option(help="Manifest CSV (default manifests/default.csv).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name under runs/ (default: the model kind).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Resume this run folder from its last checkpoint.")] = None,
) -> None:
    """Train a model; the run folder gets checkpoint.pt (with its model card), metrics.csv and config.yaml."""
    ws = Workspace.open(workspace)
    cfg = load_config(config, set)
    manifest_path = manifest or ws.manifest_path()
    songs = Manifest.read(manifest_path)
    step(f"decoding {len(songs.frame)} songs at {cfg.features.sample_rate} Hz")
    with progress_bar("decode", len(songs.frame)) as advance:
        waveforms, failures = decode_manifest(songs, ws, sample_rate=cfg.features.sample_rate, callback=advance)
    for failure in failures:
        out.print(f"[yellow]skipped[/] {failure.path}: {failure.reason}", highlight=False)
    step(f"training {model}")
    with progress_bar(f"train {model}", cfg.train.epochs if model == "cnn" else None) as advance:
        run_dir = train_run(
            ws, cfg, kind=model, manifest_path=manifest_path, name=name, run_dir=resume, waveforms=waveforms,
            epoch_callback=lambda row: advance(1),
        )
    out.print(f"run {run_dir}", highlight=False)
