"""ONNX export of the whole model: waveform chunks in, logits per head out.

The log-mel front end is part of the graph, so an ONNX consumer needs nothing but the
file: the model card travels in the file's metadata (``encore_model_card``, JSON), and
:meth:`encore.inference.Predictor.from_onnx` rebuilds a predictor from it alone. The
graph takes ``waveform`` ``(batch, n_samples)`` float32 at the card's sample rate with a
dynamic batch (and length), and returns ``class``, ``tags`` and ``regression`` logits for
the heads the model has. Exported with the TorchScript exporter
(``torch.onnx.export(dynamo=False)``), opset 17, the first with an STFT operator.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch

from encore.exceptions import CheckpointError
from encore.models.card import ModelCard
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

OPSET = 17
CARD_KEY = "encore_model_card"

__all__ = ["CARD_KEY", "OPSET", "export_onnx", "export_onnx_bytes", "read_onnx_card"]


def output_names(model: EncoreModel) -> list[str]:
    """The exported outputs: the heads, then ``novelty`` when the model has it."""
    return [*model.heads.keys(), *(["novelty"] if model.novelty is not None else [])]


def export_onnx_bytes(model: EncoreModel, *, n_samples: int | None = None) -> bytes:
    """Serialise ``model`` (eval mode, log-mel included) to ONNX bytes.

    Args:
        model: The model to export; it is put into eval mode.
        n_samples: Length of the example input used for tracing; any length works
            afterwards (the axis is dynamic). Default: 3 s at the model's rate.

    Returns:
        The ONNX model, inputs ``waveform`` and outputs named after the heads.
    """
    model = model.eval()
    sample_rate = int(model.frontend.settings()["sample_rate"])
    example = torch.zeros(2, n_samples or 3 * sample_rate)
    heads = output_names(model)
    axes: dict[str, dict[int, str]] = {"waveform": {0: "batch", 1: "n_samples"}}
    axes.update({name: {0: "batch"} for name in heads})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and folding notes
        torch.onnx.export(
            _TupleOutputs(model),
            (example,),
            buffer,  # type: ignore[arg-type]  # torch annotates a path; the TorchScript exporter also takes a file object
            dynamo=False,
            opset_version=OPSET,
            input_names=["waveform"],
            output_names=heads,
            dynamic_axes=axes,
        )
    return buffer.getvalue()


class _TupleOutputs(torch.nn.Module):
    """The model with its dict of logits as a tuple, in head order (ONNX needs a flat output)."""

    def __init__(self, model: EncoreModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(waveform)
        return tuple(outputs[name] for name in output_names(self.model))


def export_onnx(model: EncoreModel, model_card: ModelCard, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` as ONNX with its model card in the metadata.

    Args:
        model: The model (eval mode).
        model_card: Its card, stored as JSON under :data:`CARD_KEY`.
        path: Output file, conventionally ``<run>/model.onnx``.

    Returns:
        ``path``.
    """
    import onnx

    proto = onnx.load_from_string(export_onnx_bytes(model, n_samples=model_card.chunk_samples))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(model_card.to_dict())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    onnx.save(proto, tmp)
    os.replace(tmp, path)
    logger.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def read_onnx_card(path: str | os.PathLike) -> tuple[bytes, ModelCard]:
    """The bytes of an exported model and the model card in its metadata.

    Raises:
        CheckpointError: The file is missing, not ONNX, or has no encore model card.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {str(path)!r} does not exist; create it with `encore export RUN --format onnx`")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as err:  # noqa: BLE001 - protobuf raises several kinds
        raise CheckpointError(f"{str(path)!r} is not an ONNX model ({err}); re-export it") from err
    props = {p.key: p.value for p in proto.metadata_props}
    if CARD_KEY not in props:
        raise CheckpointError(f"{str(path)!r} has no encore model card; export it with `encore export`")
    try:
        stored = json.loads(props[CARD_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{str(path)!r} has a damaged encore model card ({err}); re-export it") from None
    return data, ModelCard.from_dict(stored, source=repr(str(path)))
