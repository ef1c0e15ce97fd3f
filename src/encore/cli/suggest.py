"""``encore suggest``: predicted labels for unlabelled songs and a labelling queue to fill in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import DeviceOption, WorkspaceOption, handle_errors, out, progress_bar, report_skipped, step
from encore.exceptions import ParameterError
from encore.workspace import Workspace


def _pick_songs(tracks, songs: list[str]):
    """Store tracks named by track id or by audio path; unknown names are reported and skipped."""
    by_path = {str(Path(p).resolve()): t for p, t in zip(tracks["path"], tracks["track_id"]) if isinstance(p, str)}
    wanted = []
    for name in songs:
        track_id = name if name in set(tracks["track_id"]) else by_path.get(str(Path(name).resolve()))
        if track_id is None:
            out.print(f"[yellow]skipped[/] {name}: not a track in the store; add it with `encore import` first", highlight=False)
        else:
            wanted.append(track_id)
    return tracks[tracks["track_id"].isin(wanted)].reset_index(drop=True)


@handle_errors
def suggest_command(
    run: Annotated[str, typer.Argument(help="Run folder or name under runs/ (CNN or random forest).")],
    songs: Annotated[
        list[str] | None, typer.Argument(help="Track ids or audio paths in the store (default: every unlabelled song).")
    ] = None,
    workspace: WorkspaceOption = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Queue CSV (default reports/label-queue.csv).")] = None,
    by: Annotated[str, typer.Option(help="Rank by entropy or margin.")] = "entropy",
    limit: Annotated[int | None, typer.Option(min=1, help="Keep only the N most uncertain songs.")] = None,
    labeller: Annotated[str, typer.Option(help="listener_id written on every row: one queue per person.")] = "labeller",
    device: DeviceOption = "auto",
) -> None:
    """Predict labels for songs nobody has labelled and write a queue, most uncertain first.

    Fill in the empty `label` column, then import it as feedback:
    `encore feedback import QUEUE.csv -w WS --map value=label`, rebuild labels (with
    `--set labels.min_votes=1` for one labeller a song; songs keep their splits), retrain
    and `encore compare OLD NEW`.
    """
    from encore.data.manifest import Manifest
    from encore.data.waveforms import load_waveforms
    from encore.evaluate.queue import UNCERTAINTY, build_label_queue, unlabelled_tracks, write_label_queue
    from encore.evaluate.runs import run_manifest_path
    from encore.features.cache import FeatureCache
    from encore.inference.runs import load_run

    if by not in UNCERTAINTY:
        raise ParameterError(f"--by {by!r} is unknown; rank by {' or '.join(UNCERTAINTY)}")
    ws = Workspace.open(workspace)
    loaded = load_run(run, ws.root, device=device)
    predictor, run_dir = loaded.predictor, loaded.folder
    with ws.open_store() as db:
        tracks = db.tracks()
    if songs:
        candidates = _pick_songs(tracks, songs)
    else:
        manifest_path = ws.manifest_path() if ws.manifest_path().is_file() else run_manifest_path(predictor.card, run_dir)
        candidates = unlabelled_tracks(tracks, Manifest.read(manifest_path))
    if candidates.empty:
        raise ParameterError("no unlabelled songs to suggest labels for; import songs with `encore import` or name them")
    step(f"decoding {len(candidates)} songs at {predictor.sample_rate} Hz")
    with progress_bar("decode", len(candidates)) as advance:
        decoded, failures = load_waveforms(
            list(candidates["path"]), sample_rate=predictor.sample_rate, cache=FeatureCache(ws.cache_dir), callback=advance
        )
    for failure in failures:
        report_skipped(failure.path, failure.reason)
    keep = [w is not None for w in decoded]
    step(f"predicting {sum(keep)} songs with {run_dir.name}")
    queue = build_label_queue(
        predictor,
        candidates[keep].reset_index(drop=True),
        [w for w in decoded if w is not None],
        by=by,
        labeller=labeller,
        limit=limit,
    )
    path = write_label_queue(queue, out_path or ws.reports_dir / "label-queue.csv")
    table = Table(title=f"most uncertain first ({by})")
    for col in ("rank", "track_id", "predicted", "confidence", "margin", "entropy"):
        table.add_column(col)
    for row in queue.head(10).itertuples(index=False):
        table.add_row(
            str(row.rank),
            str(row.track_id),
            str(row.predicted),
            f"{row.confidence:.3f}",
            f"{row.margin:.3f}",
            f"{row.entropy:.3f}",
        )
    out.print(table)
    out.print(f"queue {path} ({len(queue)} songs): fill in the label column, then", highlight=False)
    out.print(f"  encore feedback import {path} -w {ws.root} --map value=label", highlight=False)
    out.print(f"  encore labels -w {ws.root} --set labels.min_votes=1   # one labeller a song", highlight=False)
    out.print(f"then retrain, and `encore compare {run} NEW -w {ws.root}` (every song keeps its split)", highlight=False)
