"""Chunk runners: what turns a batch of waveform chunks into logits.

Two backends share one interface, ``runner(chunks) -> {"class": logits, ...}`` on numpy
arrays:

- :class:`TorchRunner` (the default, fastest on this project's CPUs): an inference copy
  of the model with each BatchNorm folded into the convolution before it, weights in
  channels-last layout, run under :func:`torch.inference_mode`. Folding is exact up to
  float rounding (about 1e-6); the original model is left untouched for training,
  gradients and explanations.
- :class:`OnnxRunner`: ONNX Runtime on the exported model (log-mel included), see
  :mod:`encore.inference.export`.

``bench/bench_predict.py`` measures both against plain eager float32.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from encore.exceptions import CheckpointError, ParameterError
from encore.models.card import ModelCard
from encore.models.classifier import EncoreModel
from encore.models.cnn import ConvBlock
from encore.models.registry import model_entry

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "eager")
"""``torch``: fused, channels-last, inference mode (default); ``onnx``: ONNX Runtime;
``eager``: the model as trained, plain float32 (the reference for benchmarks)."""

__all__ = [
    "BACKENDS",
    "ChunkRunner",
    "bf16_supported",
    "card_wants_bf16",
    "EagerRunner",
    "OnnxRunner",
    "TorchRunner",
    "create_runner",
    "fuse_for_inference",
    "model_device",
    "runner_device",
    "wants_bf16",
]


class ChunkRunner(Protocol):
    """Maps chunks ``(batch, chunk_samples)`` float32 to logits per head ``(batch, n)``."""

    name: str

    def __call__(self, chunks: np.ndarray) -> dict[str, np.ndarray]: ...


class _FusedConvBlock(nn.Module):
    """A :class:`ConvBlock` with BatchNorm folded into the convolution and ReLU after pooling.

    ``relu(maxpool(x)) == maxpool(relu(x))`` (ReLU is monotone), and pooling first
    applies the ReLU to a quarter of the values.
    """

    def __init__(self, conv: nn.Conv2d, pool: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pool(self.conv(x)))


def fuse_for_inference(model: EncoreModel) -> EncoreModel:
    """An eval-mode copy of ``model`` with Conv2d+BatchNorm2d pairs folded, channels-last.

    Every :class:`~encore.models.cnn.ConvBlock` becomes a fused block (BatchNorm folded
    into the convolution, ReLU after pooling); other modules are copied as they are. A
    backbone registered as slower in channels-last memory (musicnn) stays contiguous.

    Args:
        model: A model in eval mode (running statistics are what gets folded).

    Returns:
        A new model giving the same logits up to float rounding.
    """
    fused = copy.deepcopy(model).eval()
    for parent in list(fused.modules()):
        for name, module in parent.named_children():
            if type(module) is ConvBlock:  # exactly pool(relu(bn(conv(x))))
                setattr(parent, name, _FusedConvBlock(fuse_conv_bn_eval(module.conv, module.bn), module.pool))
    for param in fused.parameters():
        param.requires_grad_(False)
    if not model_entry(model.backbone_name).channels_last:
        return fused.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # as below
    return fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented; torch's overloads omit it


def _to_model_device(model: nn.Module, chunks: np.ndarray) -> torch.Tensor:
    """The chunks as a float32 tensor on the model's device (through pinned memory to a GPU)."""
    tensor = torch.from_numpy(np.ascontiguousarray(chunks, dtype=np.float32))
    device = next(model.parameters()).device
    return tensor if device.type == "cpu" else tensor.pin_memory().to(device, non_blocking=True)


def model_device(model: nn.Module | None) -> torch.device:
    """Where ``model``'s parameters are (the CPU for none)."""
    if model is None:
        return torch.device("cpu")
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def runner_device(model: nn.Module | None, device: str | torch.device | None, backend: str) -> torch.device:
    """The device a runner should use: ``device`` resolved, or the model's own when None.

    ONNX Runtime runs here on the CPU: ``auto`` then means the CPU, and an explicit GPU
    is refused with the backend to use instead.
    """
    from encore.devices import resolve_device

    if device is None:
        return model_device(model)
    if backend == "onnx":
        if str(device) in ("auto", "cpu"):
            return torch.device("cpu")
        raise ParameterError(f"--backend onnx runs on the CPU; use --backend torch with --device {device}")
    return resolve_device(device)


def wants_bf16(card: ModelCard, device: torch.device) -> bool:
    """bfloat16 autocast for serving: on a GPU that has it always (checked equal to the
    float32 CPU path within the tolerance in ``tests/inference/test_cuda.py``); on a CPU as
    :func:`card_wants_bf16` says."""
    if device.type == "cuda":
        return bf16_supported(device)
    return card_wants_bf16(card)


class EagerRunner:
    """The model as trained, float32, no fusion: the benchmark reference."""

    name = "eager"

    def __init__(self, model: EncoreModel, *, device: torch.device | None = None) -> None:
        self.model = model.eval() if device is None else model.eval().to(device)
        self.device = model_device(self.model)

    def __call__(self, chunks: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outputs = self.model(_to_model_device(self.model, chunks))
        return {name: logits.float().cpu().numpy() for name, logits in outputs.items()}


def bf16_supported(device: torch.device | None = None, *, native: bool = True) -> bool:
    """Whether ``device`` (default the CPU) runs bfloat16 convolutions.

    With ``native`` (the default) only hardware bfloat16 counts: on a CPU, the
    AVX-512 BF16 or AMX instructions. oneDNN also runs bfloat16 on any AVX-512 CPU by
    converting to float32 and back, but that is slower than float32 (1.6x slower for a
    ``small_cnn`` training step on an AVX-512 Xeon without BF16); ``native=False`` asks
    whether it runs at all.
    """
    if device is not None and device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    runs = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if not native:
        return runs
    return runs and bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def card_wants_bf16(card: ModelCard) -> bool:
    """A model trained and validated under bfloat16 autocast is served the same way, where supported."""
    return card.trained_in_bf16 and bf16_supported()


class TorchRunner:
    """Fused, channels-last copy of the model under :func:`torch.inference_mode`.

    With ``bf16`` the convolutions run under a bfloat16 autocast, as they did in training
    (the log-mel front end stays float32 inside the model); logits come back float32.
    """

    name = "torch"

    def __init__(self, model: EncoreModel, *, bf16: bool = False, device: torch.device | None = None) -> None:
        self.model = fuse_for_inference(model) if device is None else fuse_for_inference(model).to(device)
        self.device = model_device(self.model)
        self.bf16 = bf16

    def __call__(self, chunks: np.ndarray) -> dict[str, np.ndarray]:
        tensor = _to_model_device(self.model, chunks)
        with torch.inference_mode(), torch.autocast(tensor.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outputs = self.model(tensor)
        return {name: logits.float().cpu().numpy() for name, logits in outputs.items()}


class OnnxRunner:
    """ONNX Runtime session over an exported model (input ``waveform``, one output per head).

    Args:
        model_bytes: The serialised ONNX model.
        threads: Intra-op threads; ``None`` uses torch's current setting, so one knob
            (``torch.set_num_threads`` / ``OMP_NUM_THREADS``) sizes both backends.
    """

    name = "onnx"

    def __init__(self, model_bytes: bytes, *, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as err:  # pragma: no cover - onnxruntime is a dependency
            raise ParameterError("--backend onnx needs onnxruntime; pip install onnxruntime or use --backend torch") from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise CheckpointError(f"the ONNX model could not be loaded ({err}); re-export it with `encore export`") from err
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, chunks: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(None, {"waveform": np.ascontiguousarray(chunks, dtype=np.float32)})
        return dict(zip(self.output_names, values, strict=True))


def create_runner(
    model: EncoreModel,
    backend: str,
    *,
    onnx_path: str | os.PathLike | None = None,
    bf16: bool = False,
    device: torch.device | None = None,
) -> Any:
    """The runner for ``backend`` (one of :data:`BACKENDS`).

    Args:
        model: The eval-mode model.
        backend: ``"torch"``, ``"onnx"`` or ``"eager"``.
        onnx_path: An exported ``model.onnx`` to use for ``"onnx"``; exported in memory
            when ``None``.
        bf16: For ``"torch"``: run the convolutions under a bfloat16 autocast.
        device: Where the torch backends run (None = where the model is).

    Raises:
        ParameterError: Unknown backend.
    """
    if backend == "torch":
        return TorchRunner(model, bf16=bf16, device=device)
    if backend == "eager":
        return EagerRunner(model, device=device)
    if backend == "onnx":
        from encore.inference.export import export_onnx_bytes

        data = open(onnx_path, "rb").read() if onnx_path is not None else export_onnx_bytes(model)
        return OnnxRunner(data)
    raise ParameterError(f"--backend {backend!r} is unknown; use {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")
