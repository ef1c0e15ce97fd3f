"""``encore export``: write a run's whole model (log-mel included) as ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, step
from encore.exceptions import ParameterError

FORMATS = ("onnx",)


@handle_errors
def export_command(
    run: Annotated[str, typer.Argument(help="Run folder, name under runs/, or pretrained:NAME.")],
    format: Annotated[str, typer.Option("--format", "-f", help="Export format (onnx).")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: RUN/model.onnx).")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Export a CNN run as ONNX: waveform chunks in, logits out, dynamic batch, model card in the metadata.

    `encore serve RUN --backend onnx` then serves the exported file.
    """
    if format not in FORMATS:
        raise ParameterError(f"--format {format!r} is not supported; use {' or '.join(FORMATS)}")
    from encore.inference.export import export_onnx
    from encore.inference.runs import resolve_run, run_folder
    from encore.models.checkpoint import load_model

    run_dir = resolve_run(run, workspace)
    if (run_folder(run_dir) / "blend_card.json").is_file():
        networks = sorted(p.parent for p in (run_folder(run_dir) / "members").glob("*/checkpoint.pt"))
        raise ParameterError(
            f"{run_dir} is a blend; it has no single ONNX graph (its classical members are not networks). Export a "
            f"CNN member instead: {', '.join(f'encore export {p}' for p in networks) or 'it has none'}"
        )
    if run_dir.is_dir() and not (run_dir / "checkpoint.pt").is_file() and (run_dir / "model_card.json").is_file():
        raise ParameterError(
            f"{run_dir} is a classical run (handcrafted features and a scikit-learn model), not a network, so it has no "
            f"ONNX graph; it is served as it is: encore serve {run} or encore predict {run} SONGS"
        )
    step(f"exporting {run_dir} to ONNX")
    model, card = load_model(run_dir)
    target = out or run_folder(run_dir) / "model.onnx"
    path = export_onnx(model, card, target)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)
