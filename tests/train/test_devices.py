"""Devices: ``--device`` parsing, one GPU per torchrun rank, and crops drawn on the device.

The GPU count is faked here so that every machine checks the rules; tests/train/test_cuda.py
runs them on a real GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import encore.devices
import encore.train.distributed as distributed
from encore.audio.chunking import random_crop
from encore.cli.main import app
from encore.devices import resolve_device
from encore.exceptions import ParameterError
from encore.train.distributed import check_nproc, rank_device
from encore.train.feed import CropBank


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine that reports one CUDA GPU (nothing here touches it); ``auto`` means what it says."""
    monkeypatch.delenv("ENCORE_DEVICE", raising=False)
    monkeypatch.setattr(encore.devices, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(distributed, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_device_specs_resolve_or_are_refused_with_the_fix(monkeypatch, one_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ParameterError, match=r"--device cuda:1: this machine has 1 CUDA GPU \(cuda:0 to cuda:0\)"):
        resolve_device("cuda:1")
    with pytest.raises(ParameterError, match="--device 'gpu' is not a device; use auto"):
        resolve_device("gpu")
    monkeypatch.setattr(encore.devices, "cuda_device_count", lambda: 0)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ParameterError, match="sees no CUDA GPU on this machine; use --device cpu"):
        resolve_device("cuda")


def test_encore_device_says_what_auto_means(monkeypatch, one_gpu):
    monkeypatch.setenv("ENCORE_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cuda") == torch.device("cuda", 0)
    assert rank_device("auto", local_rank=1, world_size=2) == torch.device("cpu")
    monkeypatch.setenv("ENCORE_DEVICE", "cuda:3")
    with pytest.raises(ParameterError, match="ENCORE_DEVICE cuda:3: this machine has 1 CUDA GPU"):
        resolve_device("auto")


def test_each_torchrun_rank_takes_its_own_gpu_and_too_many_ranks_are_refused(one_gpu):
    assert rank_device("auto", local_rank=0, world_size=2) == torch.device("cuda", 0)
    with pytest.raises(
        ParameterError, match="--nproc 2 needs 2 GPUs .* but this machine has 1; use --nproc 1, or --set train.device=cpu"
    ):
        rank_device("auto", local_rank=1, world_size=2)
    assert rank_device("cpu", local_rank=1, world_size=2) == torch.device("cpu")  # gloo on the CPU, as asked
    check_nproc(1, "cuda")
    check_nproc(4, "cpu")
    with pytest.raises(ParameterError, match="each process takes the GPU of its own rank"):
        check_nproc(2, "cuda:0")


def test_train_nproc_beyond_the_gpus_is_refused_before_any_process_starts(one_gpu, monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr("encore.cli.train._relaunch_with_torchrun", lambda *a: started.append(a))
    result = CliRunner().invoke(app, ["train", "-w", str(tmp_path), "--nproc", "2"])
    assert result.exit_code == 1 and not started
    assert "--nproc 2 needs 2 GPUs (one per process) but this machine has 1" in result.output
    assert "Traceback" not in result.output


def test_crops_drawn_from_the_bank_are_the_crops_random_crop_draws():
    rng = np.random.default_rng(3)
    songs = [rng.standard_normal(n).astype(np.float32) for n in (900, 250, 400, 1301)]  # one shorter than a crop
    bank = CropBank(songs, 400, torch.device("cpu"))
    order = np.array([3, 1, 0, 2, 3, 3, 1])
    a, b = np.random.default_rng([7, 1]), np.random.default_rng([7, 1])
    drawn = bank.crops(order, a).numpy()
    expected = np.stack([random_crop(songs[i], 400, b) for i in order])
    np.testing.assert_array_equal(drawn, expected)
    assert a.integers(1 << 30) == b.integers(1 << 30)  # the generators moved in step
