"""On a CUDA GPU: training, crops on the device, and prediction equal to the CPU's.

Skipped without a GPU (``pytest -m cuda`` selects these; ``bench/gpu_check.sh`` runs
them on a GPU node). Tolerances: a float32 GPU run of the predictor agrees with the CPU
to 1e-4 in probability; under bfloat16 (the GPU default where it has it) to 0.03.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from machine import requires_cuda
from toy import make_toy, toy_config

from encore.audio.chunking import random_crop
from encore.inference import Predictor
from encore.inference.backends import TorchRunner
from encore.models.checkpoint import load_model
from encore.train.feed import CropBank
from encore.train.loop import fit

pytestmark = requires_cuda


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    manifest, waveforms = make_toy()
    run = tmp_path_factory.mktemp("cuda") / "run"
    return fit(manifest, waveforms, toy_config(**{"train.device": "cuda"}), run), manifest, waveforms


def test_a_gpu_fit_learns_and_its_checkpoint_loads_on_the_cpu(gpu_run):
    result, manifest, waveforms = gpu_run
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_metrics["val_accuracy"] >= 0.9
    model, card = load_model(result.checkpoint)
    assert next(model.parameters()).device.type == "cpu" and card.training is not None and card.training.precision == "float32"


def test_gpu_predictions_equal_the_cpu_path(gpu_run):
    result, manifest, waveforms = gpu_run
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"]]
    cpu = Predictor.from_checkpoint(result.checkpoint, device="cpu").predict_arrays(songs)
    gpu = Predictor.from_checkpoint(result.checkpoint, device="cuda")
    assert gpu.device.startswith("cuda") and gpu.batch_size >= 64
    assert gpu.runner.bf16 is torch.cuda.is_bf16_supported()
    model, card = load_model(result.checkpoint)
    fp32 = Predictor(model, card, runner=TorchRunner(model, device=torch.device("cuda"))).predict_arrays(songs)
    bf16 = gpu.predict_arrays(songs)
    for key in ("class_probs", "tag_probs", "scores"):
        np.testing.assert_allclose(fp32[key], cpu[key], atol=1e-4, err_msg=key)
    np.testing.assert_allclose(bf16["class_probs"], cpu["class_probs"], atol=0.03)
    np.testing.assert_allclose(bf16["tag_probs"], cpu["tag_probs"], atol=0.03)
    assert (bf16["class_probs"].argmax(1) == cpu["class_probs"].argmax(1)).all()


def test_crops_drawn_on_the_gpu_are_the_cpu_crops():
    rng = np.random.default_rng(0)
    songs = [rng.standard_normal(n).astype(np.float32) for n in (5000, 1200, 3000)]
    bank = CropBank(songs, 2000, torch.device("cuda"))
    order = np.array([0, 2, 1, 0, 2])
    drawn = bank.crops(order, np.random.default_rng(5)).cpu().numpy()
    b = np.random.default_rng(5)
    np.testing.assert_array_equal(drawn, np.stack([random_crop(songs[i], 2000, b) for i in order]))
