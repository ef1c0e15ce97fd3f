"""Hyperparameter search for the CNN with Optuna, stored in the workspace.

The study lives in ``<workspace>/tune.db`` (SQLite, Optuna's RDB storage), so a search
can be stopped and continued, and several ``encore tune`` processes can share one study.
Each trial trains a full run under ``runs/tune-<study>/trial-<n>`` and reports its
validation score after every epoch; the median pruner stops trials that fall behind the
median of earlier trials at the same epoch. The search covers the learning rate,
augmentation strength, regularisation (dropout, L2, L1) and model size.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from encore.config import EncoreConfig, save_config
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.train.objectives import selection_score
from encore.workspace import Workspace

logger = logging.getLogger(__name__)

__all__ = ["MODEL_SIZES", "suggest_config", "tune_run"]

MODEL_SIZES: dict[str, dict[str, Any]] = {
    "small": {"channels": [16, 32, 64, 64], "embedding_dim": 64},
    "base": {"channels": [32, 64, 128, 128], "embedding_dim": 128},
    "wide": {"channels": [48, 96, 192, 192], "embedding_dim": 192},
}
"""Model sizes searched for ``small_cnn`` (other backbones keep their own arguments)."""


def suggest_config(trial: optuna.trial.BaseTrial, base: EncoreConfig) -> EncoreConfig:
    """``base`` with this trial's learning rate, augmentation, regularisation and size."""
    tree = base.model_dump()
    train, augment, model = tree["train"], tree["augment"], tree["model"]
    train["lr"] = trial.suggest_float("lr", 3e-4, 1e-2, log=True)
    train["weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    l1 = trial.suggest_float("l1", 1e-8, 1e-4, log=True)
    train["l1"] = l1 if l1 > 1e-7 else 0.0  # the low end of the range means "off"
    model["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
    strength = trial.suggest_float("augment_strength", 0.0, 1.0)
    augment["gain_db"] = 9.0 * strength
    augment["time_masks"] = augment["freq_masks"] = int(round(3 * strength))
    augment["noise_p"] = 0.8 * strength
    augment["mixup_alpha"] = trial.suggest_float("mixup_alpha", 0.0, 0.4)
    if model["name"] == "small_cnn":
        size = trial.suggest_categorical("model_size", list(MODEL_SIZES))
        model["kwargs"] = {**model.get("kwargs", {}), **MODEL_SIZES[size]}
    return EncoreConfig.model_validate(tree)


def tune_run(
    ws: Workspace,
    config: EncoreConfig,
    *,
    n_trials: int,
    waveforms: Mapping[str, np.ndarray | None],
    manifest_path: str | Path | None = None,
    study_name: str = "cnn",
    timeout: float | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    trial_callback: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run (or continue) the study ``study_name`` for ``n_trials`` more trials.

    Args:
        ws: The workspace (holds ``tune.db`` and the trial runs).
        config: The base configuration; the search changes only the fields above.
        n_trials: Trials to add in this call.
        waveforms: Decoded songs by track id.
        manifest_path: Default ``manifests/default.csv``.
        study_name: Study to create or continue.
        timeout: Stop starting new trials after this many seconds.
        pruner: Default a median pruner (2 trials and 2 epochs before it prunes).
        trial_callback: Called with each finished trial (for progress output).

    Returns:
        The study; its best configuration is also written to ``runs/tune-<study>/best.yaml``.
    """
    from encore.train.loop import fit

    if n_trials < 1:
        raise ParameterError(f"n_trials={n_trials} must be at least 1")
    manifest_path = Path(manifest_path) if manifest_path else ws.manifest_path()
    manifest = Manifest.read(manifest_path)
    storage = f"sqlite:///{(ws.root / 'tune.db').resolve()}"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config.train.seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),
    )
    study_dir = ws.runs_dir / f"tune-{study_name}"

    def objective(trial: optuna.Trial) -> float:
        trial_config = suggest_config(trial, config)
        run_dir = study_dir / f"trial-{trial.number}"

        def report(row: dict[str, Any]) -> None:
            score = selection_score({k: v for k, v in row.items() if k.startswith("val_")})
            trial.report(score, step=int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {row['epoch']}: score {score:.4f} behind the median")

        result = fit(manifest, waveforms, trial_config, run_dir, manifest_path=str(manifest_path), callback=report)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("best_epoch", result.best_epoch)
        score = selection_score(result.best_metrics) if result.best_metrics else -math.inf
        return score

    callbacks = [lambda _study, trial: trial_callback(trial)] if trial_callback else None
    study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks, catch=())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        study_dir.mkdir(parents=True, exist_ok=True)
        save_config(suggest_config(optuna.trial.FixedTrial(best.params), config), study_dir / "best.yaml")
        logger.info("best trial %d: %.4f %s", best.number, best.value, best.params)
    return study
