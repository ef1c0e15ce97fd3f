"""``encore store``: the workspace store's schema revision, migrations and per-track summaries."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, handle_errors, out
from encore.exceptions import WorkspaceError
from encore.workspace import Workspace

app = typer.Typer(help="The workspace's feedback store: schema migrations and summaries.", no_args_is_help=True)


@app.command("current")
@handle_errors
def current_command(workspace: WorkspaceOption = None) -> None:
    """Print the store's schema revision and the newest one this encore knows (no changes made)."""
    from encore.store.dbvalues import resolve_url, safe_url
    from encore.store.migrate import head_revision, store_revision

    ws = Workspace.open(workspace)
    url = resolve_url(ws.store_url)
    current = store_revision(url)
    head = head_revision()
    state = "up to date" if current == head else "behind: run `encore store upgrade`"
    out.print(f"store    {safe_url(url)}\nrevision {current or 'none'}\nhead     {head} ({state})", highlight=False)


@app.command("upgrade")
@handle_errors
def upgrade_command(workspace: WorkspaceOption = None) -> None:
    """Migrate the store to the newest schema (opening a store does this too).

    A store made before migrations existed is recognised and stamped first; its data stays.
    """
    from encore.store.dbvalues import resolve_url, safe_url
    from encore.store.migrate import store_revision
    from encore.store import Store

    ws = Workspace.open(workspace)
    url = resolve_url(ws.store_url)
    before = store_revision(url)
    with Store.open(url):
        pass
    after = store_revision(url)
    message = "already at" if before == after else f"migrated from {before or 'none'} to"
    out.print(f"store {safe_url(url)}: {message} revision {after}", highlight=False)


@app.command("summary")
@handle_errors
def summary_command(
    track_id: Annotated[str, typer.Argument(help="The track to summarise.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Print what listeners said about one track, as JSON (counts, like, rating and skip rates, top tags)."""
    ws = Workspace.open(workspace)
    with ws.open_store() as db:
        summary = db.track_summary(track_id)
    if not summary.get("in_catalogue", True) and not summary.get("n_events"):
        raise WorkspaceError(
            f"track {track_id!r} is neither in the catalogue nor in any feedback of {ws.root}; "
            "add songs with `encore import` and feedback with `encore feedback import`"
        )
    out.print_json(json.dumps(summary))
