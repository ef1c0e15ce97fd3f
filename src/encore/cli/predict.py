"""``encore predict``: classify and score audio files with a trained run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from encore.cli.common import DeviceOption, WorkspaceOption, console, handle_errors, progress_bar, report_skipped
from encore.csvfile import write_csv_rows
from encore.exceptions import ParameterError
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.inference.interface import SongPredictor

STORE_BATCH = 64
"""Songs per store transaction with --store."""


def decode_jobs(jobs: int | None, predictor: SongPredictor) -> int:
    """``--jobs``, or its default: on a GPU decoding is the bottleneck, so up to 8 workers; on a
    CPU the model and the decoders share the cores, so none (see bench/RESULTS.md)."""
    if jobs is not None:
        if jobs < 0:
            raise ParameterError(f"--jobs {jobs} must be 0 (decode here) or a number of decoding processes")
        return jobs
    from encore.inference.parallel import default_decode_workers

    return default_decode_workers(predictor.device)


def catalogue_ids(store: Any) -> dict[Path, str]:
    """Resolved catalogue path -> track_id, so predicted files keep their catalogue ids."""
    tracks = store.tracks()
    return {Path(str(p)).resolve(): str(t) for t, p in zip(tracks["track_id"], tracks["path"]) if isinstance(p, str) and p}


@handle_errors
def predict_command(
    run: Annotated[str, typer.Argument(help="Run folder, name under runs/, or pretrained:NAME.")],
    paths: Annotated[list[str], typer.Argument(help="Audio files, folders or globs.")],
    workspace: WorkspaceOption = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write a CSV here instead of JSON Lines on stdout.")] = None,
    store: Annotated[bool, typer.Option("--store", help="Also write the predictions into the workspace's store.")] = False,
    shard: Annotated[str | None, typer.Option("--shard", help="Only shard i of n (0-based), e.g. 0/4.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="CNN backend: torch (default), onnx or eager.")] = "torch",
    device: DeviceOption = "auto",
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Decoding processes beside the model (default: 0 on a CPU, up to 8 on a GPU)."),
    ] = None,
) -> None:
    """Predict class probabilities, tags and appeal for each song; undecodable files are reported and skipped.

    With --store, rows go into the store under the run's name; a catalogue file keeps
    its track_id, another file gets its file name stem. --shard i/n splits the file
    list into n disjoint shards (a Slurm array or torchrun job each takes one);
    rerunning a shard replaces its rows in the store, never duplicates them.
    """
    import pandas as pd

    from encore.audio.files import expand_audio_paths
    from encore.inference.batch import predict_files, predictions_frame, select_shard
    from encore.inference.runs import load_run

    loaded = load_run(run, workspace, backend=backend, device=device)
    predictor, run_id = loaded.predictor, loaded.run_id
    files = select_shard(expand_audio_paths(paths), shard)
    db = Workspace.open(workspace).open_store() if store else None
    known = catalogue_ids(db) if db is not None else {}
    rows, failed, pending, stored, novel = [], [], [], 0, 0
    with progress_bar("predict", len(files)) as advance:
        for result in predict_files(predictor, files, progress=advance, workers=decode_jobs(jobs, predictor)):
            if result.error is not None:
                report_skipped(str(result.path), result.error)
                failed.append(result.path)
                continue
            row = result.row
            assert row is not None and result.arrays is not None  # given whenever error is None
            if row.get("novelty", {}).get("novel"):
                novel += 1
                console.print(
                    f"[yellow]novel[/] {result.path}: unlike the songs {run_id!r} was trained on; take its prediction as a guess",
                    highlight=False,
                )
            if db is not None:
                row = {"track_id": known.get(result.path.resolve(), result.path.stem), **row}
                pending.append(predictions_frame(row["track_id"], result.arrays, predictor))
                if len(pending) >= STORE_BATCH:
                    stored += db.add_predictions(pd.concat(pending), run_id=run_id)
                    pending.clear()
            rows.append(row)
            if csv_out is None:
                sys.stdout.write(json.dumps(row) + "\n")
    if db is not None:
        if pending:
            stored += db.add_predictions(pd.concat(pending), run_id=run_id)
        console.print(f"stored {stored} prediction rows for {len(rows)} songs under run {run_id!r}", highlight=False)
    if csv_out is not None:
        write_csv(csv_out, rows)
        console.print(f"wrote {len(rows)} predictions to {csv_out}")
    if failed:
        console.print(f"{len(failed)} of {len(files)} files could not be decoded and were skipped", highlight=False)
    if novel:
        console.print(
            f"{novel} of {len(rows)} songs are unlike the model's training songs (novelty beyond the "
            "99th percentile of its held-out songs)",
            highlight=False,
        )


def write_csv(path: Path, rows: list[dict]) -> None:
    """One row per song: path, duration, label, then probs.*, tags.*, scores.*, intervals.*, novelty.* columns."""
    flat = []
    for row in rows:
        item = {k: row[k] for k in ("track_id", "path", "duration") if k in row}
        item["label"] = row.get("label")
        for group in ("probs", "tags", "scores", "novelty"):
            item.update({f"{group}.{k}": v for k, v in row.get(group, {}).items()})
        for name, (low, high) in row.get("intervals", {}).items():
            item.update({f"intervals.{name}.low": low, f"intervals.{name}.high": high})
        flat.append(item)
    write_csv_rows(path, flat)
