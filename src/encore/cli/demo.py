"""``encore demo``: the whole journey on a generated catalogue, no data or network needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import SetOption, console, handle_errors, out, progress_bar, step


@handle_errors
def demo_command(
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace", "-w", help="Workspace folder the demo creates and fills (default: a new folder, not the current one)."
        ),
    ] = Path("demo-workspace"),
    artists_per_style: Annotated[int, typer.Option(help="Synthetic artists per style.")] = 6,
    songs_per_artist: Annotated[int, typer.Option(help="Songs per artist.")] = 4,
    duration: Annotated[float, typer.Option(help="Song length in seconds.")] = 12.0,
    listeners: Annotated[int, typer.Option(help="Simulated listeners.")] = 80,
    seed: Annotated[int, typer.Option(help="Seed of the generated songs and feedback.")] = 0,
    set: SetOption = None,
    out_dir: Annotated[Path | None, typer.Option("--out", hidden=True, help="Deprecated: use -w/--workspace.")] = None,
) -> None:
    """Generate songs in 5 styles and their listener feedback, then import, label, train a CNN
    and a random forest, evaluate both on held-out artists, and predict a new song."""
    from encore.cli.evaluate import fmt
    from encore.demo.run import DemoSize, run_demo

    if out_dir is not None:
        console.print(
            f"[yellow]note:[/] `encore demo --out {out_dir}` is deprecated; write `encore demo -w {out_dir}`", highlight=False
        )
        workspace = out_dir
    size = DemoSize(
        artists_per_style=artists_per_style, songs_per_artist=songs_per_artist, duration=duration, listeners=listeners
    )
    summary = run_demo(workspace, size=size, overrides=set, seed=seed, on_step=step, progress=progress_bar)

    out.print(
        f"songs: stored {summary.songs_report.stored}; events: read {summary.events_report.read}, "
        f"stored {summary.events_report.stored}, quarantined {summary.events_report.quarantined}",
        highlight=False,
    )
    m = summary.manifest
    out.print(
        f"targets: {m['labelled']} of {m['songs']} songs labelled from tag votes, {m['tags']} tags, "
        f"splits {m['splits']} (no artist in two splits)",
        highlight=False,
    )
    table = Table(title="held-out artists' songs (95 % bootstrap intervals)")
    for col in ("model", "accuracy", "macro-F1", "appeal Spearman"):
        table.add_column(col)
    for r in summary.results:
        c, a = r["classification"] or {}, r["appeal"] or {}
        table.add_row(str(r["model"]), fmt(c.get("accuracy")), fmt(c.get("macro_f1")), fmt(a.get("spearman")))
    out.print(table)
    for c in summary.comparisons:
        verdict = "excludes 0" if c["excludes_zero"] else "includes 0"
        out.print(f"CNN - forest, {c['metric']}: {c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] ({verdict})")
    song = summary.new_song
    out.print(
        f"new song {Path(song['path']).name} (generated as {summary.new_song_style}): predicted "
        f"{song.get('label')} p={max(song.get('probs', {0: 0}).values()):.2f}, "
        f"appeal {song.get('scores', {}).get('appeal', float('nan')):.2f}",
        highlight=False,
    )
    out.print(f"report {summary.report}", highlight=False)
    out.print(f"wall time {summary.seconds['total']:.0f} s", highlight=False)
