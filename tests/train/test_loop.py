import numpy as np
import pytest
import torch

from machine import requires_native_bf16
from toy import CLASSES, make_toy, toy_config

from encore.inference import Predictor
from encore.exceptions import ParameterError
from encore.train.loop import fit, get_lr, resolve_precision


@pytest.fixture(scope="module")
def toy():
    return make_toy()


def test_get_lr_warms_up_then_decays():
    lrs = [get_lr(s, total_steps=100, warmup_steps=10, base_lr=1.0) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1.0)
    assert lrs[50] < lrs[10] and lrs[-1] >= 0.1 - 1e-9


@requires_native_bf16
def test_a_bfloat16_fit_learns_too(toy, tmp_path):
    # the toy runs fp32 elsewhere: bf16 rounding differs between CPUs (AVX-512 BF16, AMX),
    # and on a toy this small that moves accuracy by a song or two; this checks that bf16 learns
    manifest, waveforms = toy
    result = fit(manifest, waveforms, toy_config(**{"train.precision": "bf16"}), tmp_path / "bf16")
    assert result.history[-1]["train_loss"] < 0.8 * result.history[0]["train_loss"]
    assert result.best_metrics["val_accuracy"] >= 0.6  # chance is 1/3


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
    assert card.label_names == CLASSES
    assert card.manifest is not None and card.manifest.digest == manifest.digest()
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


def test_select_last_keeps_the_final_epoch_and_never_stops_early(toy, tmp_path, monkeypatch):
    import encore.train.loop as loop

    manifest, waveforms = toy
    worse = iter(range(0, -100, -1))
    monkeypatch.setattr(loop, "selection_score", lambda metrics: float(next(worse)))  # validation only gets worse
    best = fit(manifest, waveforms, toy_config(**{"train.epochs": 4, "train.patience": 1}), tmp_path / "best")
    assert [row["epoch"] for row in best.history] == [1, 2] and best.best_epoch == 1

    result = fit(
        manifest, waveforms, toy_config(**{"train.epochs": 4, "train.patience": 1, "train.select": "last"}), tmp_path / "last"
    )
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4] and result.best_epoch == 4
    final = torch.load(tmp_path / "last" / "last.pt", weights_only=True)["model_state"]
    kept = torch.load(result.checkpoint, weights_only=True)["model_state"]
    for key in final:  # the novelty buffers are fitted after training, into the kept checkpoint only
        if not key.startswith("novelty."):
            torch.testing.assert_close(final[key], kept[key])


def test_a_hop_longer_than_a_chunk_is_refused_with_the_fix(toy, tmp_path):

    manifest, waveforms = toy
    with pytest.raises(ParameterError, match=r"chunk_hop_seconds=1.5 is longer than train.chunk_seconds=1.0"):
        fit(manifest, waveforms, toy_config(**{"train.chunk_hop_seconds": 1.5}), tmp_path / "run")


def test_the_card_carries_the_hop_and_validation_scores_overlapping_chunks(toy, tmp_path):
    manifest, waveforms = toy
    result = fit(manifest, waveforms, toy_config(**{"train.epochs": 1, "train.chunk_hop_seconds": 0.5}), tmp_path / "run")
    predictor = Predictor.from_checkpoint(result.checkpoint)
    assert predictor.card.chunk.hop_seconds == 0.5 and predictor.hop_samples * 2 == predictor.chunk_samples
    song = waveforms[manifest.subset("test")["track_id"][0]]
    assert len(song) == 3 * predictor.chunk_samples
    assert len(predictor._chunks(song)) == 6  # 0, 0.5, ..., 2 s whole, and the half-filled one at 2.5 s


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "auto"),
    [(True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, None)],
)
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it_in_hardware(monkeypatch, caplog, avx512_bf16, amx, auto):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)  # oneDNN runs it, maybe emulated
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", cpu) is auto
    assert resolve_precision("fp32", cpu) is None
    with caplog.at_level("WARNING", logger="encore.train.loop"):
        assert resolve_precision("bf16", cpu) is torch.bfloat16  # asked for: emulated is allowed
    assert ("emulates bfloat16" in caplog.text) is (auto is None)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert resolve_precision("auto", cpu) is None
    with pytest.raises(ParameterError, match="precision='bf16'.*use 'auto' or 'fp32'"):
        resolve_precision("bf16", cpu)
