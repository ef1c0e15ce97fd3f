"""``encore compare``: paired differences between runs on the songs they share.

It prints only the differences; each run's own metrics are `encore evaluate`'s tables
(both commands write the same report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import DeviceOption, WorkspaceOption, handle_errors, out, step
from encore.exceptions import ParameterError


@handle_errors
def compare_command(
    runs: Annotated[list[str], typer.Argument(help="Two or more run folders or names; the first is the reference.")],
    workspace: WorkspaceOption = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Judge every run on this manifest (same classes) instead of each run's own.")
    ] = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default reports/compare).")] = None,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    device: DeviceOption = "auto",
) -> None:
    """Compare runs: CNN against forest, before against after retraining, or two taxonomies.

    Each run is evaluated on the split of its own manifest (or of --manifest); the first
    run is compared with each other one on the songs both were evaluated on, with a
    paired bootstrap interval of the difference and whether it excludes zero. Runs with
    different classes are compared on accuracy, each against its own labels. Only the
    differences are printed; `encore evaluate` prints each run's own metrics.
    """
    if len(runs) < 2:
        raise ParameterError(f"compare needs at least two runs, got {len(runs)}; for one run use `encore evaluate`")
    from encore.cli.evaluate import check_split, comparisons_table
    from encore.data.manifest import Manifest
    from encore.evaluate.compare import compare_results
    from encore.evaluate.report import write_report
    from encore.evaluate.runs import evaluate_run
    from encore.workspace import Workspace

    check_split(split)
    ws = Workspace.open(workspace)
    run_dirs = [ws.resolve_run(r) for r in runs]
    results = []
    for run_dir in run_dirs:
        step(f"evaluating {run_dir.name} on the {split} split")
        results.append(
            evaluate_run(
                run_dir,
                split=split,
                cache_dir=ws.cache_dir,
                n_boot=n_boot,
                manifest_path=manifest,
                importance=False,
                device=device,
            )
        )
    names = [r["name"] for r in results]
    if len(set(names)) < len(names):  # runs from different workspaces may share a folder name
        for i, r in enumerate(results):
            r["name"] = f"{r['name']} ({i + 1})"
    comparisons = compare_results(results, n_boot=n_boot)
    if not comparisons:
        out.print("[yellow]no paired comparison:[/] the runs share fewer than two songs with targets", highlight=False)
    summary = Manifest.read(results[0]["manifest"]).summary()
    report = write_report(
        out_dir or ws.reports_dir / "compare", results, title="encore comparison", data_summary=summary, comparisons=comparisons
    )
    if comparisons:
        out.print(comparisons_table(comparisons))
    out.print(f"per-run metrics: `encore evaluate {' '.join(runs)}` or the report; report {report}", highlight=False)
