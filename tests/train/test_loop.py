import numpy as np
import pytest
import torch

from toy import CLASSES, make_toy, toy_config

from encore.inference import Predictor
from encore.train.loop import fit, get_lr

@pytest.fixture(scope="module")
def toy():
    return make_toy()

def test_get_lr_warms_up_then_decays():
    lrs = [get_lr(s, total_steps=100, warmup_steps=10, base_lr=1.0) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1.0)
    assert lrs[50] < lrs[10] and lrs[-1] >= 0.1 - 1e-9

def test_fit_learns_and_checkpoint_round_trips(toy, tmp_path):
    manifest, waveforms = toy
    result = fit(manifest, waveforms, toy_config(), tmp_path / "run")
    history = result.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.best_metrics["val_accuracy"] >= 0.9
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == len(history) + 1
    assert (tmp_path / "run" / "config.yaml").is_file()

    predictor = Predictor.from_checkpoint(result.checkpoint)
    card = predictor.card
    assert card["model_kwargs"]["label_names"] == CLASSES
    assert card["manifest"]["digest"] == manifest.digest()
    test = manifest.subset("test")
    arrays = predictor.predict_arrays([waveforms[t] for t in test["track_id"]])
    accuracy = (arrays["class_probs"].argmax(1) == manifest.class_targets(test)).mean()
    assert accuracy >= 0.9
    # the same song alone or in a batch gives the same result
    alone = predictor.predict_waveform(waveforms[test["track_id"][0]])
    np.testing.assert_allclose(alone["class_probs"], arrays["class_probs"][0], atol=1e-5)

def test_killed_run_resumes_to_the_same_weights(toy, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.epochs": 3})
    full = fit(manifest, waveforms, config, tmp_path / "full")

    class Killed(Exception):
        pass

    def die_after_first_epoch(row):
        if row["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        fit(manifest, waveforms, config, tmp_path / "resumed", callback=die_after_first_epoch)
    resumed = fit(manifest, waveforms, config, tmp_path / "resumed")
    assert [round(r["train_loss"], 6) for r in resumed.history] == [round(r["train_loss"], 6) for r in full.history]
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model_state"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])

def test_balanced_sampler_and_l1_and_mixup_run(toy, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.epochs": 1, "train.balance": "sampler", "train.l1": 1e-5, "augment.mixup_alpha": 0.4})
    result = fit(manifest, waveforms, config, tmp_path / "run")
    assert np.isfinite(result.history[0]["train_loss"])
