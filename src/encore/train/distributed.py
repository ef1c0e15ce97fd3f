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

__all__ = ["DistributedContext", "setup_distributed", "torchrun_command"]


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

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Join torchrun's process group if there is one; pick this process's device.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    torch_device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The single-node ``torchrun`` command that reruns ``encore`` with ``argv`` on ``nproc`` processes."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "encore.cli.main", *argv,
    ]
