"""``encore serve``: the HTTP service and its web page (FastAPI + uvicorn)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, step


def find_workspace(workspace: Path | None) -> Path | None:
    """The given workspace, else $ENCORE_WORKSPACE or the current folder if it is one, else None."""
    from encore.exceptions import WorkspaceError
    from encore.workspace import Workspace

    try:
        return Workspace.open(workspace).root
    except WorkspaceError:
        if workspace is not None:
            raise
        return None


@handle_errors
def serve_command(
    run: Annotated[str, typer.Argument(help="Run folder, name under runs/, or an exported .onnx file.")],
    workspace: WorkspaceOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    backend: Annotated[str | None, typer.Option("--backend", help="torch (default) or onnx.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Bearer token for writes (default: $ENCORE_API_TOKEN).")] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Development mode: allow writes without a token. Never expose it.")] = False,
    workers: Annotated[int | None, typer.Option(help="Inference threads (default: one per core).")] = None,
    queue_mb: Annotated[
        float | None,
        typer.Option(
            help="Most MB of uploads waiting or running at once before 503 (default: a quarter of the available memory)."
        ),
    ] = None,
    queue_timeout: Annotated[
        float | None, typer.Option(help="Most seconds a request waits for a worker before 503 (default 60).")
    ] = None,
    queue_size: Annotated[int | None, typer.Option(hidden=True, help="Gone: see --queue-mb and --queue-timeout.")] = None,
    max_upload_mb: Annotated[float | None, typer.Option(help="Largest upload in MB (default 20).")] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Where the CNN runs: auto (default: a CUDA GPU when present), cpu, cuda or cuda:N."),
    ] = None,
) -> None:
    """Serve a run over HTTP: /v1/predict, /v1/feedback, /v1/tracks/{id}, /metrics, /docs and a web page at /.

    Writes (feedback, stored predictions) need `Authorization: Bearer <token>`; without a
    token configured the server refuses them unless started with --dev.
    """
    import torch
    import uvicorn

    if queue_size is not None:
        console.print(
            "[yellow]--queue-size is no longer used: requests wait their turn within --queue-mb of uploads "
            "and --queue-timeout seconds[/]",
            highlight=False,
        )

    from encore.serve import ServeSettings, create_app

    settings = ServeSettings.from_env(
        run=Path(run),
        workspace=find_workspace(workspace),
        backend=backend,
        token=token,
        dev=dev or None,
        workers=workers,
        queue_bytes=int(queue_mb * 1e6) if queue_mb else None,
        queue_timeout=queue_timeout,
        max_upload_bytes=int(max_upload_mb * 1e6) if max_upload_mb else None,
        device=device,
    )
    torch.set_num_threads(1)  # parallelism comes from the worker pool, one forward pass per core
    app = create_app(settings)
    mode = {"token": "token required", "dev": "DEV MODE: writes need no token", "disabled": "read-only (no token set)"}
    step(f"serving {settings.run} ({settings.backend}) on http://{host}:{port}  writes: {mode[settings.writes]}")
    step(
        f"{settings.workers} inference workers; uploads wait up to {settings.queue_timeout:g} s "
        f"within {settings.queue_bytes / 1e6:.0f} MB (--queue-timeout, --queue-mb)"
    )
    if settings.workspace is None:
        console.print("[yellow]no workspace: feedback and stored predictions are off (pass -w)[/]")
    uvicorn.run(app, host=host, port=port, log_level=logging.getLevelName(logging.getLogger().level).lower(), access_log=False)
