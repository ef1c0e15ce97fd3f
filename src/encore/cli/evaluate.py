"""``encore evaluate``: held-out metrics with intervals, calibration, importances and an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from encore.cli.common import DeviceOption, WorkspaceOption, handle_errors, out, step
from encore.exceptions import ParameterError


SPLITS = ("test", "val")


def check_split(split: str) -> None:
    """Refuse a split runs are not evaluated on (the training songs would flatter any model)."""
    if split not in SPLITS:
        raise ParameterError(f"--split {split!r} is not a held-out split; use test or val")


def fmt(metric: dict | None) -> str:
    """``value [low, high]`` of a metric with its interval, or ``-``."""
    if not metric or metric.get("value") is None:
        return "-"
    low, high = metric.get("ci_low"), metric.get("ci_high")
    if low is None or high is None or low != low or high != high:
        return f"{metric['value']:.3f} [n/a]"
    return f"{metric['value']:.3f} [{low:.3f}, {high:.3f}]"


def _ece(cal: dict) -> str:
    if not cal or cal.get("ece_before") is None:
        return "-"
    after = cal.get("ece_after")
    if cal.get("kept") is False:
        return f"{cal['ece_before']:.3f} (T not kept)"
    return f"{cal['ece_before']:.3f} -> {after:.3f}" if after is not None else f"{cal['ece_before']:.3f}"


def results_table(results: list[dict]) -> Table:
    """One column per run, one row per headline figure with its 95 % interval."""
    table = Table(title="held-out songs (95 % bootstrap intervals)")
    table.add_column("metric")
    for r in results:
        table.add_column(r["name"], overflow="fold")
    rows: list[tuple[str, list[str]]] = []
    get = [(r.get("classification") or {}, r.get("appeal") or {}, r.get("calibration") or {}) for r in results]
    rows.append(("songs", [str(c.get("n", a.get("n", "-"))) for c, a, _ in get]))
    for label, key in (("accuracy", "accuracy"), ("balanced accuracy", "balanced_accuracy"), ("macro-F1", "macro_f1")):
        rows.append((label, [fmt(c.get(key)) for c, _, _ in get]))
    rows.append(("ECE (T=1 -> card T)", [_ece(cal) for _, _, cal in get]))
    for label, key in (("appeal Spearman", "spearman"), ("appeal Pearson", "pearson"), ("appeal MAE", "mae")):
        rows.append((label, [fmt(a.get(key)) for _, a, _ in get]))
    ceilings = [(a.get("reliability") or {}).get("ceiling") for _, a, _ in get]
    if any(v is not None for v in ceilings):
        rows.append(("appeal ceiling", [f"{v:.3f}" if v is not None else "-" for v in ceilings]))
    for label, values in rows:
        if any(v != "-" for v in values):
            table.add_row(label, *values)
    return table


def comparisons_table(
    comparisons: list[dict], title: str = "paired differences on shared songs (A - B, 95 % bootstrap interval)"
) -> Table:
    """Paired differences (first run minus each other, or each pair of models) with their intervals."""
    table = Table(title=title)
    for col in ("A - B", "metric"):
        table.add_column(col, overflow="fold")
    for col in ("songs", "A", "B", "difference [95 %]", "excludes 0"):  # numbers never split over two lines
        table.add_column(col, no_wrap=True, justify="right")
    for c in comparisons:
        table.add_row(
            f"{c['a']} - {c['b']}",
            c["metric"],
            str(c["n"]),
            f"{c['value_a']:.3f}",
            f"{c['value_b']:.3f}",
            f"{c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
            "[green]yes[/]" if c["excludes_zero"] else "no",
        )
    return table


ManifestOption = Annotated[
    Path | None, typer.Option(help="Judge every run on this manifest (same classes) instead of each run's own.")
]


@handle_errors
def evaluate_command(
    runs: Annotated[
        list[str],
        typer.Argument(help="Run folders, names under runs/ or pretrained:NAME; the first is compared with the others."),
    ],
    workspace: WorkspaceOption = None,
    manifest: ManifestOption = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: the first run's folder).")] = None,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples for the intervals.")] = 1000,
    importance: Annotated[
        bool,
        typer.Option(
            "--importance",
            help="Also compute permutation (forest) or mel-band (CNN) importances on the validation songs: slow, so off unless asked; the forest's impurity importances are always in the report.",
        ),
    ] = False,
    device: DeviceOption = "auto",
) -> None:
    """Evaluate runs on held-out songs and write report.html and report.json.

    With two or more runs (CNN against forest, before against after retraining, two
    taxonomies), the first is also compared with each other one on the songs both were
    evaluated on: a paired bootstrap interval of the difference and whether it excludes
    zero. Runs with different classes are compared on accuracy, each against its own labels.
    """
    results, comparisons, report = evaluate_runs(
        runs,
        workspace=workspace,
        manifest=manifest,
        split=split,
        out_dir=out_dir,
        n_boot=n_boot,
        importance=importance,
        device=device,
        only_differences=False,
    )
    from encore.evaluate.report import novelty_sentence

    out.print(results_table(results))
    if comparisons:
        out.print(comparisons_table(comparisons))
    for result in results:
        reason = (result.get("calibration") or {}).get("reason")
        if reason:
            out.print(f"{result['name']}: temperature {reason}", highlight=False)
        out.print(f"{result['name']}: {result['importance_note']}", highlight=False)
        if result.get("novelty"):
            out.print(f"{result['name']}: novelty: {novelty_sentence(result['novelty'])}", highlight=False)
    out.print(f"report {report}", highlight=False)


@handle_errors
def compare_command(
    runs: Annotated[list[str], typer.Argument(help="Two or more run folders or names; the first is the reference.")],
    workspace: WorkspaceOption = None,
    manifest: ManifestOption = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default reports/compare).")] = None,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    device: DeviceOption = "auto",
) -> None:
    """`encore evaluate` of two or more runs that prints only their paired differences.

    The first run is compared with each other one on the songs both were evaluated on, as
    `encore evaluate RUN_A RUN_B ...` does (the same report); `encore evaluate` also prints
    each run's own metrics.
    """
    if len(runs) < 2:
        raise ParameterError(f"compare needs at least two runs, got {len(runs)}; for one run use `encore evaluate`")
    _, comparisons, report = evaluate_runs(
        runs,
        workspace=workspace,
        manifest=manifest,
        split=split,
        out_dir=out_dir,
        n_boot=n_boot,
        importance=False,
        device=device,
        only_differences=True,
    )
    if comparisons:
        out.print(comparisons_table(comparisons))
    else:
        out.print("[yellow]no paired comparison:[/] the runs share fewer than two songs with targets", highlight=False)
    out.print(f"per-run metrics: `encore evaluate {' '.join(runs)}` or the report; report {report}", highlight=False)


def evaluate_runs(
    runs: list[str],
    *,
    workspace: Path | None,
    manifest: Path | None,
    split: str,
    out_dir: Path | None,
    n_boot: int,
    importance: bool,
    device: str,
    only_differences: bool,
) -> tuple[list[dict], list[dict], Path]:
    """What `encore evaluate` and `encore compare` share: evaluate each run, compare the
    first with the others, write the report; returns the results, the comparisons and the
    report's path.

    ``only_differences`` (compare) titles the report a comparison and writes it under the
    workspace's ``reports/compare`` unless ``out_dir`` is given; else it goes into the first
    run's folder.
    """
    check_split(split)
    from encore.data.manifest import Manifest
    from encore.evaluate.compare import compare_results
    from encore.evaluate.report import write_report
    from encore.evaluate.runs import evaluate_run
    from encore.inference.runs import resolve_run, run_folder
    from encore.workspace import Workspace

    ws = Workspace.open(workspace)
    run_dirs = [run_folder(resolve_run(r, ws.root)) for r in runs]
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
                importance=importance,
                device=device,
            )
        )
    names = [r["name"] for r in results]
    if len(set(names)) < len(names):  # runs from different workspaces may share a folder name
        for i, r in enumerate(results):
            r["name"] = f"{r['name']} ({i + 1})"
    comparisons = compare_results(results, n_boot=n_boot)
    summary = Manifest.read(results[0]["manifest"]).summary()
    if only_differences:
        folder, title = out_dir or ws.reports_dir / "compare", "encore comparison"
    else:
        folder, title = out_dir or run_dirs[0], "encore evaluation"
    report = write_report(folder, results, title=title, data_summary=summary, comparisons=comparisons)
    return results, comparisons, report
