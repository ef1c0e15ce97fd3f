"""``encore init``: create a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import handle_errors, out
from encore.workspace import Workspace


@handle_errors
def init_command(
    path: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")] = Path("."),
    store: Annotated[
        str | None,
        typer.Option(help="Store URL, e.g. postgresql+psycopg://user@host/db (default: SQLite file in the workspace)."),
    ] = None,
) -> None:
    """Create a workspace: an SQLite (or PostgreSQL) store, a feature cache, manifests/ and runs/."""
    ws = Workspace.init(path, store_url=store)
    with ws.open_store() as db:
        counts = db.counts()
    out.print(f"workspace {ws.root}\nstore     {ws.store_url}\ncontents  {counts}", highlight=False)
