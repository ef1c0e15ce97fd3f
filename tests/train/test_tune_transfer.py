"""encore tune (Optuna in the workspace), transfer from an earlier run, calibration in the card."""

from __future__ import annotations

import optuna
import pytest
import torch

from toy import make_toy, toy_config

from encore.config import load_config
from encore.exceptions import ParameterError
from encore.models.checkpoint import load_checkpoint
from encore.train.loop import fit
from encore.train.transfer import BODY_PREFIXES
from encore.train.tune import tune_run
from encore.workspace import Workspace


@pytest.fixture(scope="module")
def toy():
    return make_toy()


@pytest.fixture(scope="module")
def source_run(toy, tmp_path_factory):
    manifest, waveforms = toy
    run = tmp_path_factory.mktemp("source") / "run"
    fit(manifest, waveforms, toy_config(**{"train.epochs": 3}), run)
    return run


def _workspace(tmp_path, manifest) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    manifest.write(ws.manifest_path())
    return ws


def test_tune_stores_the_study_in_the_workspace_and_writes_the_best_config(toy, tmp_path):
    manifest, waveforms = toy
    ws = _workspace(tmp_path, manifest)
    base = toy_config(**{"train.epochs": 2})
    study = tune_run(ws, base, n_trials=2, waveforms=waveforms, study_name="s")
    again = tune_run(ws, base, n_trials=1, waveforms=waveforms, study_name="s")  # continues the same study
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{ws.root / 'tune.db'}")
    assert len(stored.trials) == 3 and len(again.trials) == 3
    assert {t.params["model_size"] for t in stored.trials} <= {"small", "base", "wide"}
    best = load_config(ws.runs_dir / "tune-s" / "best.yaml")
    assert best.train.lr == pytest.approx(study.best_trial.params["lr"]) or best.train.lr == pytest.approx(
        again.best_trial.params["lr"]
    )
    assert best.train.epochs == 2  # everything the search does not touch comes from the base config


def test_tune_prunes_trials_that_fall_behind(toy, tmp_path):
    manifest, waveforms = toy
    ws = _workspace(tmp_path, manifest)
    always = optuna.pruners.ThresholdPruner(lower=10.0)  # no score reaches 10: prune at the first report
    study = tune_run(ws, toy_config(**{"train.epochs": 3}), n_trials=1, waveforms=waveforms, study_name="p", pruner=always)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # stopped after its first epoch


def test_transfer_copies_the_backbone_and_a_frozen_probe_keeps_it(toy, source_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ENCORE_EMBEDDING_CACHE", str(tmp_path / "embeddings"))
    manifest, waveforms = toy
    source = load_checkpoint(source_run / "checkpoint.pt")["model_state"]
    config = toy_config(**{"train.epochs": 2, "train.init_from": str(source_run), "train.freeze_backbone": True})
    result = fit(manifest, waveforms, config, tmp_path / "probe")
    state = load_checkpoint(result.checkpoint)
    body = [k for k in source if k.startswith(BODY_PREFIXES)]
    assert body
    for key in body:  # frozen: weights and BatchNorm statistics unchanged
        torch.testing.assert_close(state["model_state"][key], source[key])
    assert not torch.equal(state["model_state"]["heads.class.weight"], source["heads.class.weight"])
    assert state["model_card"].transfer["frozen"] is True
    assert state["model_card"].transfer["published"] is False
    assert not (tmp_path / "embeddings").exists()  # our own run's embeddings are not kept on disk

    tuned = fit(manifest, waveforms, toy_config(**{"train.epochs": 1, "train.init_from": str(source_run)}), tmp_path / "ft")
    changed = load_checkpoint(tuned.checkpoint)["model_state"]
    assert any(not torch.equal(changed[k], source[k]) for k in body if k.startswith("backbone."))


def test_transfer_refuses_a_different_backbone(toy, source_run, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.init_from": str(source_run), "model.kwargs": {"channels": [8, 8, 8, 8], "embedding_dim": 8}})
    with pytest.raises(ParameterError, match="model.kwargs"):
        fit(manifest, waveforms, config, tmp_path / "bad")


def test_card_records_precision_and_a_fitted_temperature(source_run):
    card = load_checkpoint(source_run / "checkpoint.pt")["model_card"]
    assert card.training.precision in ("bfloat16", "float32")
    calibration = card.calibration
    assert card.temperature == calibration.temperature > 0
    assert calibration.nll_after <= calibration.nll_before + 1e-9
    # the fitted temperature is served only when the cross-fit says it transfers; the card says why
    assert calibration.temperature == (calibration.fitted_temperature if calibration.kept else 1.0)
    assert calibration.reason.startswith("kept" if calibration.kept else "not kept")


def test_weight_average_is_what_gets_validated_saved_and_resumed(toy, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.ema_decay": 0.9, "train.epochs": 1})
    result = fit(manifest, waveforms, config, tmp_path / "ema")
    last = load_checkpoint(tmp_path / "ema" / "last.pt")
    best = load_checkpoint(result.checkpoint)["model_state"]
    # one epoch: the best checkpoint holds the averaged weights, which differ from the raw ones
    torch.testing.assert_close(best["heads.class.weight"], last["ema_state"]["heads.class.weight"])
    assert not torch.equal(last["ema_state"]["heads.class.weight"], last["model_state"]["heads.class.weight"])
    assert "val_accuracy" in result.best_metrics
