"""``encore tune``: Optuna search over the CNN's learning rate, augmentation, regularisation and size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import ConfigOption, SetOption, WorkspaceOption, handle_errors, out, progress_bar, step
from encore.workspace import Workspace


@handle_errors
def tune_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials to run in this call (a study can be continued later).")] = 20,
    study: Annotated[str, typer.Option(help="Study name in the workspace's tune.db.")] = "cnn",
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Manifest CSV (default manifests/default.csv).")] = None,
) -> None:
    """Search hyperparameters; trials that fall behind the median are pruned. Writes runs/tune-STUDY/best.yaml."""
    import optuna

    from encore.config import load_config
    from encore.data.manifest import Manifest
    from encore.train.runs import decode_manifest
    from encore.train.tune import tune_run

    ws = Workspace.open(workspace)
    cfg = load_config(config, set)
    manifest_path = manifest or ws.manifest_path()
    songs = Manifest.read(manifest_path)
    step(f"decoding {len(songs.frame)} songs at {cfg.features.sample_rate} Hz")
    with progress_bar("decode", len(songs.frame)) as advance:
        waveforms, _ = decode_manifest(songs, ws, sample_rate=cfg.features.sample_rate, callback=advance)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    step(f"tuning study {study!r}: {trials} trials")

    def show(trial: optuna.trial.FrozenTrial) -> None:
        value = "pruned" if trial.value is None else f"{trial.value:.4f}"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        out.print(f"trial {trial.number}: {trial.state.name.lower()} {value}  {params}", highlight=False)

    result = tune_run(
        ws,
        cfg,
        n_trials=trials,
        waveforms=waveforms,
        manifest_path=manifest_path,
        study_name=study,
        timeout=timeout,
        trial_callback=show,
    )
    completed = [t for t in result.trials if t.value is not None]
    if completed:
        best = result.best_trial
        out.print(
            f"best trial {best.number}: {best.value:.4f}; config {ws.runs_dir / f'tune-{study}' / 'best.yaml'}", highlight=False
        )
        out.print(f"train it with: encore train -c {ws.runs_dir / f'tune-{study}' / 'best.yaml'}", highlight=False)
    else:
        out.print("no trial completed", highlight=False)
