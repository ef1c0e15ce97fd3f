"""``encore labels``: turn feedback into targets and artist-safe splits (a manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import ConfigOption, SetOption, WorkspaceOption, handle_errors, out
from encore.config import load_config
from encore.data.targets import build_manifest
from encore.workspace import Workspace


@handle_errors
def labels_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    name: Annotated[str, typer.Option(help="Manifest name under manifests/.")] = "default",
) -> None:
    """Build class labels (tag votes weighted by listener reliability, or a catalogue label
    set), tag targets, an appeal score with its uncertainty, and splits by artist."""
    ws = Workspace.open(workspace)
    cfg = load_config(config, set)
    with ws.open_store() as db:
        manifest = build_manifest(db, cfg.labels, base_dir=Path(config).parent if config else None)
    path = manifest.write(ws.manifest_path(name))
    summary = manifest.summary()
    table = Table(title=f"manifest {path}")
    table.add_column("what")
    table.add_column("value")
    for key in ("songs", "artists", "labelled", "unlabelled", "tags", "events", "listeners", "label_source"):
        if key in summary:
            table.add_row(key, str(summary[key]))
    table.add_row("splits", ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    table.add_row("classes", ", ".join(f"{k} {v}" for k, v in sorted(summary["label_counts"].items())))
    table.add_row("tags kept", ", ".join(manifest.tag_names) or "-")
    out.print(table)
