"""``encore cv``: k-fold cross-validation of several models on the same artist-grouped folds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from encore.cli.common import (
    ConfigOption,
    SetOption,
    WorkspaceOption,
    handle_errors,
    out,
    progress_bars,
    shows_progress,
    step,
)
from encore.cli.evaluate import comparisons_table
from encore.exceptions import ParameterError

if TYPE_CHECKING:
    from rich.progress import Progress


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ParameterError(f"--seeds {text!r} must be integers separated by commas, e.g. 0,1,2") from None


def _progress(units: int) -> tuple[Any, Progress]:
    """The rich progress callbacks of a run (bars only on a terminal)."""
    from encore.evaluate.cv import CVProgress

    enabled = shows_progress()
    bars = progress_bars()
    overall = bars.add_task("model x seed x fold", total=units)

    class Bars(CVProgress):
        epochs: Any = None
        songs: Any = None  # one bar, reused by each unit's features or embeddings

        def decoding(self, sample_rate: int, total: int) -> Callable[[int], None]:
            task = bars.add_task(f"decode at {sample_rate} Hz", total=total)

            def advance(n: int = 1) -> None:
                bars.advance(task, n)

            return advance

        def unit_started(self, model: str, seed: int, fold: int, epochs: int | None) -> Callable[[dict], None] | None:
            bars.update(overall, description=f"{model} seed {seed} fold {fold}")
            if not epochs:
                return None
            if self.epochs is None:
                self.epochs = bars.add_task("epochs", total=epochs)
            bars.reset(self.epochs, total=epochs)
            return lambda row: bars.advance(self.epochs, 1)

        def task(self, description: str, total: int) -> Callable[[int], None]:
            if self.songs is None:
                self.songs = bars.add_task(description, total=total)
            bars.reset(self.songs, total=total, description=description)

            def advance(n: int = 1) -> None:
                bars.advance(self.songs, n)

            return advance

        def unit_done(self, model: str, seed: int, fold: int, seconds: float, *, skipped: bool) -> None:
            bars.advance(overall, 1)
            if not skipped and not enabled:
                step(f"{model} seed {seed} fold {fold}: trained and scored in {seconds:.0f} s")

    return Bars(), bars


def _summary_table(report: dict) -> Any:
    from rich.table import Table

    from encore.evaluate.cv_report import metric_label

    models = report["models"]
    keys: list[str] = []
    for m in models.values():
        keys += [k for k in m["headline_keys"] if k not in keys]
    seeds = max((len(m["seeds"]) for m in models.values()), default=1)
    table = Table(title=f"held-out folds, pooled (mean ± sd over {seeds} seed{'s' if seeds > 1 else ''})")
    table.add_column("metric")
    for name in models:
        table.add_column(name)
    ceilings = report.get("ceilings") or {}
    if ceilings:
        table.add_column("ceiling")
    for key in keys:
        cells = []
        for m in models.values():
            spread = m["over_seeds"].get(key) or {}
            mean, sd = spread.get("mean"), spread.get("sd")
            cells.append("-" if mean is None else f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))
        ceiling = (ceilings.get(key.removeprefix("spearman:")) or {}).get("ceiling") if key.startswith("spearman:") else None
        table.add_row(metric_label(key), *cells, *([f"{ceiling:.2f}" if ceiling is not None else ""] if ceilings else []))
    return table


@handle_errors
def cv_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="A model to cross-validate (repeatable): KIND (cnn, random_forest, gradient_boosting, svm, ensemble, blend), KIND=CONFIG "
            "for its own config, NAME:KIND[=CONFIG] to name it (two CNNs: --model a:cnn=a.yaml --model b:cnn=b.yaml). "
            "Default: cnn and random_forest.",
        ),
    ] = None,
    folds: Annotated[int, typer.Option(help="Number of folds (artist-grouped, stratified by label).")] = 5,
    seeds: Annotated[
        str, typer.Option(help="Training seeds, comma-separated (train.seed and baseline.seed); the folds stay put.")
    ] = "0",
    fold_seed: Annotated[int, typer.Option(help="Seed of the dealing of artists into folds.")] = 0,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Share of each round's training songs held out for validation, for models that use it "
            "(the CNN: early stopping, calibration); 0 = train on all (use with train.select=last)."
        ),
    ] = 0.15,
    name: Annotated[
        str, typer.Option(help="Folder under WS/cv/; rerunning a name resumes it at the first unfinished fold.")
    ] = "cv",
    manifest: Annotated[Path | None, typer.Option(help="Manifest CSV (default manifests/default.csv).")] = None,
    device: Annotated[str | None, typer.Option(help="Where models train: auto, cpu, cuda or cuda:N (train.device).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    restart: Annotated[bool, typer.Option("--restart", help="Discard this name's earlier results and start again.")] = False,
) -> None:
    """Cross-validate models on the same artist-grouped, label-stratified folds; writes WS/cv/NAME/report.html,
    report.json and predictions/<model>.csv (every held-out prediction). A killed run resumes where it stopped."""
    from encore.evaluate.cv import CVPlan, cv_dir, parse_model_spec, run_cv
    from encore.workspace import Workspace

    ws = Workspace.open(workspace)
    specs = [parse_model_spec(m) for m in (model or ["cnn", "random_forest"])]
    plan = CVPlan(
        models=specs,
        seeds=_parse_seeds(seeds),
        n_folds=folds,
        fold_seed=fold_seed,
        val_fraction=val_fraction,
        config_path=str(config) if config else None,
        overrides=list(set or []),
        device=device,
        n_boot=n_boot,
    )
    plan.check()
    units = len(specs) * len(plan.seeds) * folds
    step(
        f"cross-validating {', '.join(m.name for m in specs)} on {folds} folds x {len(plan.seeds)} seed(s) in {cv_dir(ws, name)}"
    )
    callbacks, bars = _progress(units)
    with bars:
        report = run_cv(ws, plan, name=name, manifest_path=manifest, restart=restart, progress=callbacks)
    data = report["data"]
    if data["songs_without_artist"]:
        out.print(
            f"[yellow]{data['songs_without_artist']} of {data['songs']} songs have no artist[/]: each is its own "
            "group in the folds, so songs by one artist may fall in two folds",
            highlight=False,
        )
    for failure in report["decode_failures"]:
        out.print(f"[yellow]skipped[/] {failure['path']}: {failure['reason']}", highlight=False)
    out.print(_summary_table(report))
    if report["comparisons"]:
        out.print(comparisons_table(report["comparisons"], "paired bootstrap over songs (A - B, mean over seeds, 95 % interval)"))
    from encore.evaluate.cv_summary import cv_novelty_sentence

    for model_name, m in report["models"].items():
        if m.get("novelty"):
            out.print(f"{model_name}: novelty: {cv_novelty_sentence(m['novelty'])}", highlight=False)
    for model_name, path in report["predictions"].items():
        out.print(f"predictions {model_name}: {path}", highlight=False)
    out.print(f"report {report['report_html']}", highlight=False)
