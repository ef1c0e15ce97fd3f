"""Training through faults and across processes: kill -9 mid-epoch, torchrun with 2 processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from toy import make_toy, toy_config

from encore.train.loop import fit

WORKER = Path(__file__).with_name("fit_worker.py")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parent), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model_state"]


def test_kill_9_mid_epoch_then_resume_reaches_the_same_weights(tmp_path):
    manifest, waveforms = make_toy()
    fit(manifest, waveforms, toy_config(**{"train.epochs": 3}), tmp_path / "reference")  # its last.pt is compared below

    run_dir, marker = tmp_path / "killed", tmp_path / "hanging"
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(run_dir), "--epochs", "3", "--hang-in-epoch", "2", "--marker", str(marker)],
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the worker exited before it reached epoch 2"
            assert time.monotonic() < deadline, "the worker never reached the middle of epoch 2"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1  # epoch 2 never finished

    resumed = fit(manifest, waveforms, toy_config(**{"train.epochs": 3}), run_dir)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    a, b = _weights(tmp_path / "reference" / "last.pt"), _weights(run_dir / "last.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def _torchrun(nproc: int, run_dir: Path, epochs: int, result: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        str(WORKER),
        str(run_dir),
        "--epochs",
        str(epochs),
        "--result",
        str(result),
    ]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_match_one_and_a_two_process_checkpoint_resumes_on_one(tmp_path):
    manifest, waveforms = make_toy()
    single = fit(manifest, waveforms, toy_config(), tmp_path / "single")

    _torchrun(2, tmp_path / "ddp", 8, tmp_path / "ddp.json")
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    # Same global batches, gradients averaged over the two halves: the same task is learnt.
    # Tolerance: BatchNorm statistics are per process, so the numbers are close, not equal.
    assert ddp["best_metrics"]["val_accuracy"] >= single.best_metrics["val_accuracy"] - 0.1
    assert ddp["best_metrics"]["val_accuracy"] >= 0.9
    assert abs(ddp["history"][-1]["train_loss"] - single.history[-1]["train_loss"]) < 0.35
    assert len(ddp["history"]) == len(single.history)
    # only rank 0 wrote: one row per epoch
    assert (tmp_path / "ddp" / "metrics.csv").read_text().count("\n") == len(ddp["history"]) + 1

    # A checkpoint written by 2 processes resumes on 1.
    _torchrun(2, tmp_path / "switch", 3, tmp_path / "switch.json")
    first = json.loads((tmp_path / "switch.json").read_text())["history"]
    resumed = fit(manifest, waveforms, toy_config(**{"train.epochs": 5}), tmp_path / "switch")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert [r["train_loss"] for r in resumed.history[:3]] == [r["train_loss"] for r in first]
    assert resumed.history[-1]["train_loss"] < first[0]["train_loss"]
