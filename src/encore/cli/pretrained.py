"""``encore pretrained``: list the published models encore can convert, and convert one once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import console, handle_errors, out, step

app = typer.Typer(help="Published pretrained models: `list` them, `convert NAME` once, then use pretrained:NAME as a run.")


@app.command("list")
@handle_errors
def list_command(
    models_dir: Annotated[
        Path | None, typer.Option("--dir", help="Models folder (default: $ENCORE_PRETRAINED_DIR or ~/.cache/encore/pretrained).")
    ] = None,
) -> None:
    """Each convertible model, what it was trained on, its licence, and whether it is converted here."""
    from encore.pretrained import PRETRAINED, default_models_dir

    folder = models_dir or default_models_dir()
    table = Table(title=f"pretrained models (folder {folder})")
    for column in ("name", "converted", "licence", "trained on", "description"):
        table.add_column(column)
    for name, spec in PRETRAINED.items():
        converted = "yes" if (folder / name / "checkpoint.pt").is_file() else "no"
        table.add_row(name, converted, spec.licence, spec.dataset, spec.description)
    out.print(table)
    out.print("convert one with `encore pretrained convert NAME`, then use it as the run `pretrained:NAME`", highlight=False)


@app.command("convert")
@handle_errors
def convert_command(
    name: Annotated[str, typer.Argument(help="A name from `encore pretrained list`, e.g. musicnn-msd.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Models folder (default: $ENCORE_PRETRAINED_DIR or ~/.cache/encore/pretrained).")
    ] = None,
) -> None:
    """Convert a published model's weights from its installed package into an encore checkpoint (needs the musicnn extra once)."""
    from encore.pretrained import default_models_dir, pretrained_spec
    from encore.pretrained.musicnn import convert_pretrained

    spec = pretrained_spec(name)
    folder = out_dir or default_models_dir()
    step(f"converting {name} from the installed {spec.package!r} package ({spec.checkpoint})")
    path = convert_pretrained(name, folder)
    console.print(f"wrote {path}", highlight=False)
    hint = f"encore predict pretrained:{name} SONG" if out_dir is None else f"encore predict {path.parent} SONG"
    console.print(f"use it with `{hint}`", highlight=False)
