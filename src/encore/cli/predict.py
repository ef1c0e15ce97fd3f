"""``encore predict``: classify and score audio files with a trained run."""

from __future__ import annotations

import csv
import glob
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import WorkspaceOption, console, handle_errors, progress_bar
from encore.exceptions import AudioDecodeError, ParameterError
from encore.inference import load_predictor
from encore.workspace import Workspace

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".au"})


def expand_paths(items: list[str]) -> list[Path]:
    """Files, folders (searched recursively for audio) and globs, in order, without repeats."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS))
        elif p.exists():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise ParameterError(f"{item!r} is not a file, folder or matching glob")
            paths.extend(matches)
    seen: set[Path] = set()
    return [p for p in paths if not (p in seen or seen.add(p))]


@handle_errors
def predict_command(
    run: Annotated[str, typer.Argument(help="Run folder or name under runs/.")],
    paths: Annotated[list[str], typer.Argument(help="Audio files, folders or globs.")],
    workspace: WorkspaceOption = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write a CSV here instead of JSON Lines on stdout.")] = None,
) -> None:
    """Predict class probabilities, tags and appeal for each song; undecodable files are reported and skipped."""
    run_dir = Path(run) if Path(run).exists() else Workspace.open(workspace).resolve_run(run)
    predictor = load_predictor(run_dir)
    files = expand_paths(paths)
    rows, failed = [], 0
    with progress_bar("predict", len(files)) as advance:
        for path in files:
            try:
                row = predictor.predict_file(path)
            except AudioDecodeError as err:
                console.print(f"[yellow]skipped[/] {err}", highlight=False)
                failed += 1
            else:
                rows.append(row)
                if csv_out is None:
                    sys.stdout.write(json.dumps(row) + "\n")
            advance(1)
    if csv_out is not None:
        write_csv(csv_out, rows)
        console.print(f"wrote {len(rows)} predictions to {csv_out}")
    if failed:
        console.print(f"{failed} of {len(files)} files could not be decoded")


def write_csv(path: Path, rows: list[dict]) -> None:
    flat = []
    for row in rows:
        item = {"path": row["path"], "duration": row["duration"], "label": row.get("label")}
        for group in ("probs", "tags", "scores"):
            item.update({f"{group}.{k}": v for k, v in row.get(group, {}).items()})
        flat.append(item)
    keys: list[str] = []
    for item in flat:
        keys.extend(k for k in item if k not in keys)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(flat)
