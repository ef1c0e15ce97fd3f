"""Emotify 5-fold cross-validation through ``encore cv``: the CNN against the random forest.

Usage:
    python experiments/emotify_cv.py [--data ../shared/data/emotify] [--workspace /tmp/encore-bench-ws-emotify]
                                     [--models cnn,rf] [--config configs/emotify_cv.yaml] [--set train.epochs=30 ...]
                                     [--folds 5] [--seeds 0] [--val-fraction 0] [--name bench] [--restart]
                                     [--out experiments/emotify_cv.json] [--predictions predictions.csv]

The workspace is built once as a new user builds it (``encore init``, ``encore import
--layout emotify``, ``encore feedback import --format emotify``, ``encore labels -c
configs/emotify.yaml``): the genre from the dataset's folders, the nine GEMS emotions as
soft tag targets (the share of a song's listeners who ticked each), appeal from the
liked/disliked votes, and each target's split-half reliability. Then
:func:`encore.evaluate.cv.run_cv` does what ``encore cv`` does: folds stratified by genre
(Emotify names no artists, so each song is its own group), the same for both models;
both train on all of a fold's training songs by default (``--val-fraction 0``: the CNN
runs its full schedule, ``train.select: last``). A killed run resumes at the next
unfinished fold. The table printed is the one ``experiments/NOTES.md`` records; the whole
report is in ``WORKSPACE/cv/NAME/report.html``.

Results up to 2026-11-29 in ``experiments/NOTES.md`` came from the earlier version of this
script (its own targets and scikit-learn's ``StratifiedKFold`` folds; see
``experiments/emotify_history.py``, which the analysis scripts still read).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from emotify_history import REPO

from encore.evaluate.cv import CVPlan, ModelSpec, run_cv
from encore.workspace import Workspace

MODELS = {"cnn": ModelSpec("cnn", "cnn"), "rf": ModelSpec("rf", "random_forest")}


def build_workspace(root: Path, data: Path, labels_config: Path) -> Workspace:
    """The Emotify workspace through the CLI commands a user types (once; reused after)."""
    from encore.cli.main import app

    if (root / "manifests" / "default.csv").is_file():
        return Workspace.open(root)
    shutil.rmtree(root, ignore_errors=True)
    for argv in (
        ["init", str(root)],
        ["import", str(data), "--layout", "emotify", "-w", str(root)],
        ["feedback", "import", str(data / "annotations.csv"), "--format", "emotify", "-w", str(root)],
        ["labels", "-w", str(root), "-c", str(labels_config)],
    ):
        print("encore " + " ".join(argv), flush=True)
        app(argv, standalone_mode=False)
    return Workspace.open(root)


def format_table(report: dict) -> str:
    """Accuracy, each emotion's and appeal's Spearman (first seed), the ceilings, the paired differences."""
    tags = report["data"]["tag_names"]
    targets = [f"tag:{t}" for t in tags] + ["appeal"]
    names = " | ".join(t.removeprefix("tag:") for t in targets)
    lines = [
        f"| model | songs | accuracy [95 % CI] | {names} | train s/fold |",
        "| --- | --- | --- | " + " | ".join("---" for _ in targets) + " | --- |",
    ]
    for name, m in report["models"].items():
        first = m["seeds"][next(iter(m["seeds"]))]
        acc = first["classification"]["accuracy"]
        cells = " | ".join(f"{first['headline'].get('spearman:' + t, float('nan')):.2f}" for t in targets)
        over = m["over_seeds"]["accuracy"]
        seeds = f" ({len(m['seeds'])} seeds, accuracy {over['mean']:.3f} ± {over['sd']:.3f})" if len(m["seeds"]) > 1 else ""
        accuracy = f"{acc['value']:.3f} [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}]"
        lines.append(f"| {name}{seeds} | {first['n']} | {accuracy} | {cells} | {m['train_seconds']['mean']:.0f} |")
    ceilings = report["ceilings"]
    cells = " | ".join(f"{ceilings[t]['ceiling']:.2f}" if t in ceilings else "" for t in targets)
    lines.append(f"| ceiling (sqrt split-half reliability) | | | {cells} | |")
    if report["comparisons"]:
        lines.append("")
        for c in report["comparisons"]:
            lines.append(f"{c['a']} - {c['b']} {c['metric']}: {c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]")
    return "\n".join(lines)


def write_predictions(path: Path, report: dict) -> None:
    """One row per model and held-out song (first seed): genre probabilities, emotion rates, appeal."""
    frames = []
    for name, csv_path in report["predictions"].items():
        rows = pd.read_csv(csv_path, dtype={"track_id": str})
        rows = rows[rows["seed"] == rows["seed"].min()]
        frame = pd.DataFrame({"model": name, "track_id": rows["track_id"]})
        for genre in report["data"]["label_names"]:
            frame[f"p_{genre}"] = rows[f"prob:{genre}"]
        for tag in report["data"]["tag_names"]:
            frame[tag.replace(" ", "_")] = rows[f"pred:tag:{tag}"]
        frame["appeal"] = rows["pred:appeal"]
        frames.append(frame)
    pd.concat(frames).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/encore-bench-ws-emotify"))
    parser.add_argument("--labels-config", type=Path, default=REPO / "configs" / "emotify.yaml")
    parser.add_argument("--models", default="cnn,rf", help="comma-separated: cnn, rf")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override a.b=v")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="share of each fold's training songs held out for the CNN's validation (0 = train on all "
        "of them; use with train.select=last)",
    )
    parser.add_argument("--name", default="bench", help="the cross-validation's folder under WORKSPACE/cv/ (resumed if there)")
    parser.add_argument("--restart", action="store_true", help="discard the folder's earlier folds first")
    parser.add_argument("--out", type=Path, default=None, help="write the report's JSON here too")
    parser.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="write every held-out song's predictions (one row per model and song) as CSV here",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("encore.train.loop").setLevel(logging.WARNING)

    ws = build_workspace(args.workspace, args.data, args.labels_config)
    plan = CVPlan(
        models=[MODELS[m] for m in args.models.split(",")],
        seeds=[int(s) for s in args.seeds.split(",")],
        n_folds=args.folds,
        val_fraction=args.val_fraction,
        config_path=str(args.config),
        overrides=args.overrides,
    )
    t0 = time.perf_counter()
    report = run_cv(ws, plan, name=args.name, restart=args.restart)
    print(f"cross-validation done in {time.perf_counter() - t0:.0f} s; report {report['report_html']}", flush=True)
    print(format_table(report))
    if args.predictions:
        write_predictions(args.predictions, report)
    if args.out:
        shutil.copyfile(Path(report["report_html"]).with_suffix(".json"), args.out)


if __name__ == "__main__":
    main()
