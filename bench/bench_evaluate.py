"""Cost of `encore evaluate`'s optional importances against the evaluation itself, in one process.

Usage: python bench/bench_evaluate.py [--data ../shared/data/emotify/audio] [--clips 100]
       [--epochs 1] [--keep DIR]

Links the first N clips of a folder-per-label library (Emotify's ``audio/<genre>/``,
spread over the labels) into a fresh workspace, imports it, builds the manifest, trains
a CNN (the default config, ``--epochs`` epochs: timing only, the costs do not depend on
training) and the random forest, then times ``evaluate_run`` on the test split of each:
first without importances (the reference, as `encore evaluate` now runs by default), then
with ``importance=True`` (`--importance`: the forest's permutation importance and the
CNN's mel-band occlusion on the validation songs). A warm-up evaluation first fills the
decode cache, so both timed runs read the same cached audio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from encore.cli.main import app
from encore.evaluate.runs import evaluate_run
from encore.feedback.importers.tracks import AUDIO_SUFFIXES
from encore.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: object) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(result.output)


def link_library(source: Path, target: Path, clips: int) -> None:
    """The first ``clips`` files of ``source/<label>/``, taken label by label in turn."""
    per_label = {
        d.name: sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        for d in sorted(source.iterdir())
        if d.is_dir()
    }
    taken = 0
    for i in range(max(len(files) for files in per_label.values())):
        for label, files in per_label.items():
            if taken < clips and i < len(files):
                (target / label).mkdir(parents=True, exist_ok=True)
                (target / label / files[i].name).symlink_to(files[i])
                taken += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "emotify" / "audio")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="Workspace folder to keep (default: a temporary one).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    ws = root / "ws"
    if not (ws / "runs" / "rf").is_dir():
        link_library(args.data, root / "lib", args.clips)
        Workspace.init(ws)
        invoke("import", root / "lib", "-w", ws, "--label-set", "genre")
        invoke("labels", "-w", ws)
        start = time.perf_counter()
        invoke(
            "train",
            "-w",
            ws,
            "-c",
            ROOT / "configs" / "default.yaml",
            "--model",
            "cnn",
            "--name",
            "cnn",
            "--set",
            f"train.epochs={args.epochs}",
        )
        invoke("train", "-w", ws, "-c", ROOT / "configs" / "default.yaml", "--model", "random_forest", "--name", "rf")
        print(f"setup (import, labels, two trainings): {time.perf_counter() - start:.0f} s")
    workspace = Workspace.open(ws)
    for run in ("cnn", "rf"):
        run_dir = workspace.resolve_run(run)
        evaluate_run(run_dir, cache_dir=workspace.cache_dir, n_boot=1000)  # warm-up: decode cache
        start = time.perf_counter()
        evaluate_run(run_dir, cache_dir=workspace.cache_dir, n_boot=1000)
        reference = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_run(run_dir, cache_dir=workspace.cache_dir, n_boot=1000, importance=True)
        asked = time.perf_counter() - start
        print(
            f"{run}: {args.clips} clips, evaluate {reference:.1f} s (reference), with --importance {asked:.1f} s, "
            f"ratio {asked / reference:.1f}x; {result['importance_note']}"
        )


if __name__ == "__main__":
    main()
