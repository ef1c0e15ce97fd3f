"""Data-parallel training on torchrun: process group, devices, and reductions.

``fit`` calls :func:`setup_distributed` once. Under ``torchrun`` (``WORLD_SIZE`` > 1 in
the environment) it joins the process group (gloo on CPU, NCCL on GPUs) with the
``env://`` rendezvous torchrun sets up, so one node and many nodes work the same way.
Outside torchrun it returns a one-process context and nothing else changes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from encore.devices import cuda_device_count, device_spec, resolve_device
from encore.exceptions import ParameterError

__all__ = ["DistributedContext", "check_nproc", "rank_device", "setup_distributed", "torchrun_command"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank, world size and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and metrics; the others only compute."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum_floats(self, values: dict[str, float]) -> dict[str, float]:
        """Sum each value over all ranks (the same keys in the same order on every rank)."""
        if not self.active or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return dict(zip(keys, tensor.tolist(), strict=True))

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def _wants_cuda(device: str) -> bool:
    device = device_spec(device)
    return device.startswith("cuda") or (device == "auto" and cuda_device_count() > 0)


def check_nproc(nproc: int, device: str = "auto") -> None:
    """Refuse ``nproc`` processes on this node before any starts, when they would share GPUs.

    Each process of a CUDA run takes one GPU (its ``LOCAL_RANK``'s); with fewer GPUs than
    processes the run is refused with both numbers and the two ways out.

    Raises:
        ParameterError: More processes than GPUs, or a fixed ``cuda:N`` for several processes.
    """
    if nproc <= 1 or not _wants_cuda(device):
        return
    if ":" in device_spec(device):
        raise ParameterError(
            f"--nproc {nproc} with train.device={device}: each process takes the GPU of its own rank; "
            "use --set train.device=cuda (or auto)"
        )
    count = cuda_device_count()
    if nproc > count:
        raise ParameterError(
            f"--nproc {nproc} needs {nproc} GPUs (one per process) but this machine has {count}; "
            f"use --nproc {max(count, 1)}, or --set train.device=cpu to train {nproc} processes on the CPU"
        )


def rank_device(device: str, *, local_rank: int, world_size: int) -> torch.device:
    """This process's device: under torchrun ``cuda:LOCAL_RANK`` (or the CPU), else ``device`` resolved."""
    if world_size <= 1:
        return resolve_device(device, option="train.device")
    if not _wants_cuda(device):
        return torch.device("cpu")
    check_nproc(local_rank + 1, device)  # this rank needs GPU number local_rank
    return torch.device("cuda", local_rank)


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Join torchrun's process group if there is one; pick this process's device.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
            Under torchrun each process takes the GPU of its ``LOCAL_RANK``.

    Raises:
        ParameterError: The device is not there, or this rank has no GPU of its own.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = rank_device(device, local_rank=local_rank, world_size=world_size)
    use_cuda = torch_device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The single-node ``torchrun`` command that reruns ``encore`` with ``argv`` on ``nproc`` processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "encore.cli.main",
        *argv,
    ]
