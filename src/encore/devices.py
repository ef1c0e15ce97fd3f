"""Where tensors run: one rule behind ``--device`` and ``train.device``.

``auto`` takes the first CUDA GPU when PyTorch sees one, else the CPU; ``cpu``;
``cuda`` (the current GPU, 0 unless set); ``cuda:N``. A GPU that is not there is
refused with the number of GPUs that are, rather than failing later inside CUDA.
``ENCORE_DEVICE`` (e.g. ``cpu``) says what ``auto`` means on this machine: a service or
a test suite kept off the GPU without changing any command.
"""

from __future__ import annotations

import os
import re

import torch

from encore.exceptions import ParameterError

__all__ = ["DEVICE_PATTERN", "DEVICE_HELP", "cuda_device_count", "device_spec", "resolve_device"]
ENV_DEVICE = "ENCORE_DEVICE"

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
"""What ``--device`` and ``train.device`` accept."""
DEVICE_HELP = "auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N."


def cuda_device_count() -> int:
    """GPUs PyTorch can use here (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def device_spec(spec: str | None) -> str:
    """``spec`` normalised, with ``auto`` replaced by ``$ENCORE_DEVICE`` when that is set."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = os.environ.get(ENV_DEVICE, "auto").strip().lower() or "auto"
    return spec


def resolve_device(spec: str | torch.device | None = "auto", *, option: str = "--device") -> torch.device:
    """The :class:`torch.device` for ``spec``.

    Args:
        spec: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a device (None = ``auto``).
        option: How the user set it, for the error message (``--device``, ``train.device``).

    Raises:
        ParameterError: A malformed spec, or a GPU that is not there.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    if (spec or "auto").strip().lower() == "auto" and os.environ.get(ENV_DEVICE):
        option = ENV_DEVICE
    spec = device_spec(spec)
    if not re.match(DEVICE_PATTERN, spec):
        raise ParameterError(f"{option} {spec!r} is not a device; use {DEVICE_HELP}")
    count = cuda_device_count()
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if count else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not count:
        raise ParameterError(f"{option} {spec}: PyTorch sees no CUDA GPU on this machine; use {option} cpu (or auto)")
    index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
    if index >= count:
        raise ParameterError(
            f"{option} {spec}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
            f"(cuda:0 to cuda:{count - 1}); pick one of those"
        )
    return torch.device("cuda", index)
