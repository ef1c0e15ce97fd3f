"""``encore evaluate``: held-out metrics with intervals, comparisons and an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import WorkspaceOption, handle_errors, out, step
from encore.data.manifest import Manifest
from encore.evaluate.report import write_report
from encore.evaluate.runs import compare_results, evaluate_run
from encore.workspace import Workspace


def fmt(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "-"
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def results_table(results: list[dict]) -> Table:
    table = Table(title="held-out songs (95 % bootstrap intervals)")
    for col in ("run", "model", "songs", "accuracy", "macro-F1", "appeal Spearman"):
        table.add_column(col)
    for r in results:
        c, a = r["classification"] or {}, r["appeal"] or {}
        table.add_row(r["name"], str(r["model"]), str(c.get("n", a.get("n", "-"))), fmt(c.get("accuracy")),
                      fmt(c.get("macro_f1")), fmt(a.get("spearman")))
    return table


@handle_errors
def evaluate_command(
    runs: Annotated[list[str], typer.Argument(help="Run folders or names under runs/; the first is compared with the others.")],
    workspace: WorkspaceOption = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: the first run's folder).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
) -> None:
    """Evaluate runs on held-out songs and write report.html and report.json."""
    ws = Workspace.open(workspace)
    run_dirs = [ws.resolve_run(r) for r in runs]
    results = []
    for run_dir in run_dirs:
        step(f"evaluating {run_dir.name} on the {split} split")
        results.append(evaluate_run(run_dir, split=split, cache_dir=ws.cache_dir, n_boot=n_boot))
    comparisons = compare_results(results, n_boot=n_boot)
    manifest_path = evaluate_manifest_path(run_dirs[0])
    summary = Manifest.read(manifest_path).summary() if manifest_path else None
    report = write_report(out_dir or run_dirs[0], results, title="encore evaluation", data_summary=summary, comparisons=comparisons)
    out.print(results_table(results))
    for c in comparisons:
        verdict = "interval excludes 0" if c["excludes_zero"] else "interval includes 0"
        out.print(f"{c['a']} - {c['b']} ({c['metric']}): {c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], {verdict}")
    out.print(f"report {report}", highlight=False)


def evaluate_manifest_path(run_dir: Path) -> str | None:
    from encore.inference import load_predictor

    return load_predictor(run_dir).card.get("manifest", {}).get("path")
