"""``encore init``: create a workspace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, out
from encore.exceptions import ParameterError
from encore.workspace import ENV_WORKSPACE, Workspace


@handle_errors
def init_command(
    path: Annotated[
        Path | None,
        typer.Argument(help="Deprecated: the folder, now given as -w/--workspace like every other command.", show_default=False),
    ] = None,
    workspace: WorkspaceOption = None,
    store: Annotated[
        str | None,
        typer.Option(help="Store URL, e.g. postgresql+psycopg://user@host/db (default: SQLite file in the workspace)."),
    ] = None,
) -> None:
    """Create a workspace: an SQLite (or PostgreSQL) store, a feature cache, manifests/ and runs/.

    `encore init -w WS` creates WS; `encore init` alone makes the current folder (or
    $ENCORE_WORKSPACE) a workspace. Running it again on a workspace changes nothing.
    """
    if path is not None:
        if workspace is not None and path.resolve() != workspace.resolve():
            raise ParameterError(f"two workspaces given, {path} and -w {workspace}; give only -w {workspace}")
        console.print(f"[yellow]note:[/] `encore init {path}` is deprecated; write `encore init -w {path}`", highlight=False)
    root = workspace or path or Path(os.environ.get(ENV_WORKSPACE) or ".")
    ws = Workspace.init(root, store_url=store)
    with ws.open_store() as db:
        counts = db.counts()
    contents = ", ".join(f"{n} {name.replace('_', ' ').replace('quarantine', 'quarantined rows')}" for name, n in counts.items())
    out.print(f"workspace {ws.root}\nstore     {ws.store_url}\ncontents  {contents}", highlight=False)
