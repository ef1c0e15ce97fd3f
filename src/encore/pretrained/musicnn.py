"""Convert the TensorFlow checkpoints shipped inside the ``musicnn`` wheel into encore checkpoints.

The wheel (ISC licence) holds ``MSD_musicnn``, ``MTT_musicnn``, ``MSD_vgg`` and ``MTT_vgg``
as TensorFlow 1 checkpoints. They are read with TensorFlow's checkpoint reader alone:
musicnn's own code is never imported (it pins ``numpy<1.17``, and its ``extractor()``
hides a failed restore behind a bare ``except``). Every variable is mapped onto
:class:`~encore.models.musicnn.Musicnn` or :class:`~encore.models.musicnn.MusicnnVGG`
by name, with its layout changed where the frameworks differ; the optimiser's slots
are the only variables left out, and any other variable that does not map is an error.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import encore
from encore.exceptions import CheckpointError, ParameterError
from encore.config import FeatureConfig
from encore.models.card import ChunkSpec, ModelCard, NetworkSpec, Origin
from encore.models.checkpoint import save_checkpoint
from encore.models.classifier import EncoreModel
from encore.models.musicnn import MUSICNN_CHUNK_SECONDS, MUSICNN_FRONTEND, MUSICNN_N_FRAMES
from encore.pretrained.catalogue import PretrainedSpec, pretrained_spec

logger = logging.getLogger(__name__)

__all__ = ["build_card", "convert_pretrained", "locate_checkpoint", "map_variables", "network_spec", "read_tf_checkpoint"]

INSTALL_HINT = "install the conversion extra: pip install 'encore[musicnn]' && pip install --no-deps musicnn"
OPTIMISER_VARIABLES = ("beta1_power", "beta2_power")

Transform = Callable[[np.ndarray], np.ndarray]


def _conv2d(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)


def _conv_over_time(kernel: np.ndarray) -> np.ndarray:
    return kernel[:, :, 0, :].transpose(2, 1, 0)  # (7, channels, 1, out) -> Conv1d's (out, channels, 7)


def _dense(kernel: np.ndarray) -> np.ndarray:
    return kernel.T  # (in, out) -> (out, in)


def _same(value: np.ndarray) -> np.ndarray:
    return value


def locate_checkpoint(spec: PretrainedSpec) -> tuple[str, str]:
    """The TensorFlow checkpoint prefix of ``spec`` inside its installed package, and the package version.

    Raises:
        ParameterError: The package is not installed or lacks the checkpoint.
    """
    found = importlib.util.find_spec(spec.package)  # finds the package without running its code
    if found is None or not found.submodule_search_locations:
        raise ParameterError(
            f"converting {spec.name!r} reads the weights from the {spec.package!r} package, which is not installed; {INSTALL_HINT}"
        )
    folder = Path(next(iter(found.submodule_search_locations))) / spec.checkpoint
    if not (folder / ".index").is_file():
        raise ParameterError(
            f"the installed {spec.package!r} package has no checkpoint {spec.checkpoint!r} at {folder}; "
            f"reinstall it: pip install --no-deps --force-reinstall {spec.package}"
        )
    try:
        version = importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return str(folder) + os.sep, version  # the files are '.index' and '.data-*': the prefix is the folder itself


def read_tf_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every variable of a TensorFlow checkpoint, by name, with TensorFlow's checkpoint reader.

    Raises:
        ParameterError: TensorFlow is not installed.
        CheckpointError: The checkpoint cannot be read.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise ParameterError(
            f"converting a TensorFlow checkpoint needs TensorFlow, which is not installed; {INSTALL_HINT}"
        ) from None
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except Exception as err:  # noqa: BLE001 - TensorFlow raises its own error kinds
        raise CheckpointError(f"TensorFlow could not read the checkpoint {prefix!r}: {err}") from err
    return {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}


def _bn(tf_name: str, torch_name: str) -> dict[str, tuple[str, Transform]]:
    return {
        f"{tf_name}/gamma": (f"{torch_name}.weight", _same),
        f"{tf_name}/beta": (f"{torch_name}.bias", _same),
        f"{tf_name}/moving_mean": (f"{torch_name}.running_mean", _same),
        f"{tf_name}/moving_variance": (f"{torch_name}.running_var", _same),
    }


def _layer(tf_name: str, torch_name: str, transform: Transform) -> dict[str, tuple[str, Transform]]:
    return {f"{tf_name}/kernel": (f"{torch_name}.weight", transform), f"{tf_name}/bias": (f"{torch_name}.bias", _same)}


def _bn_name(index: int) -> str:
    return "batch_normalization" if index == 0 else f"batch_normalization_{index}"


def variable_map(backbone: str) -> dict[str, tuple[str, Transform]]:
    """TensorFlow variable name -> (encore state-dict key, layout transform), in musicnn's creation order."""
    mapping = _bn(_bn_name(0), "backbone.input_bn")
    if backbone == "musicnn":
        blocks = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2", "midend.0", "midend.1", "midend.2"]
        for i, block in enumerate(blocks):
            conv = "conv2d" if i == 0 else f"conv2d_{i}"
            mapping |= _layer(conv, f"backbone.{block}.conv", _conv_over_time if block.startswith("midend") else _conv2d)
            mapping |= _bn(_bn_name(i + 1), f"backbone.{block}.bn")
        mapping |= _bn(_bn_name(9), "backbone.pool_bn") | _bn(_bn_name(10), "backbone.dense_bn")
        mapping |= _layer("dense", "backbone.dense", _dense) | _layer("dense_1", "heads.tags", _dense)
    elif backbone == "musicnn_vgg":
        for i in range(5):
            mapping |= _layer(f"{i + 1}CNN", f"backbone.blocks.{i}.conv", _conv2d) | _bn(
                _bn_name(i + 1), f"backbone.blocks.{i}.bn"
            )
        mapping |= _layer("dense", "heads.tags", _dense)
    else:
        raise ParameterError(f"no TensorFlow variable map for backbone {backbone!r}")
    return mapping


def _is_optimiser_state(name: str) -> bool:
    return name in OPTIMISER_VARIABLES or "/Adam" in name


def map_variables(model: EncoreModel, variables: dict[str, np.ndarray], backbone: str, *, source: str) -> int:
    """Load ``variables`` (TensorFlow names) into ``model``; returns how many tensors were set.

    Raises:
        CheckpointError: A variable that does not map, a shape that does not fit, or a
            weight of the model that no variable sets; the message names it.
    """
    mapping = variable_map(backbone)
    unmapped = sorted(name for name in variables if name not in mapping and not _is_optimiser_state(name))
    if unmapped:
        raise CheckpointError(
            f"{source}: TensorFlow variable(s) {unmapped[:5]} map to no layer of encore's {backbone!r}; "
            "this checkpoint is not the architecture encore ports (report it with the musicnn version)"
        )
    state = model.state_dict()
    missing = sorted(name for name in mapping if name not in variables)
    if missing:
        raise CheckpointError(f"{source}: the checkpoint lacks variable(s) {missing[:5]} that {backbone!r} needs")
    new_state = {}
    for tf_name, (key, transform) in mapping.items():
        value = np.ascontiguousarray(transform(variables[tf_name]))
        if key not in state or tuple(state[key].shape) != value.shape:
            expected = tuple(state[key].shape) if key in state else "no such weight"
            raise CheckpointError(f"{source}: variable {tf_name!r} has shape {value.shape}, encore's {key!r} expects {expected}")
        new_state[key] = torch.from_numpy(value.astype(np.float32))
    learned = [k for k in state if not k.endswith("num_batches_tracked") and not k.startswith("frontend.")]
    unset = sorted(set(learned) - set(new_state))
    if unset:
        raise CheckpointError(f"{source}: no TensorFlow variable sets encore's {unset[:5]}")
    model.load_state_dict(new_state, strict=False)
    return len(new_state)


def network_spec(spec: PretrainedSpec) -> NetworkSpec:
    """The network of ``spec``: musicnn's front end, backbone and its 50 tags."""
    kwargs = dict(spec.backbone_kwargs)
    if spec.backbone == "musicnn_vgg":
        kwargs.setdefault("n_frames", MUSICNN_N_FRAMES)
    return NetworkSpec(
        frontend=FeatureConfig(**MUSICNN_FRONTEND),
        backbone=spec.backbone,
        backbone_kwargs=kwargs,
        tag_names=list(spec.tag_names),
        dropout=0.5,
    )


def build_card(spec: PretrainedSpec, version: str, n_tensors: int) -> ModelCard:
    """The model card of a converted model: how to rebuild it, and where it came from."""
    return ModelCard(
        network=network_spec(spec),
        chunk=ChunkSpec(seconds=MUSICNN_CHUNK_SECONDS, hop_seconds=MUSICNN_CHUNK_SECONDS),
        aggregate="mean_probs",  # musicnn's taggram is averaged over patches
        pretrained=spec.name,
        origin=Origin(
            paper=spec.paper,
            package=spec.package,
            package_version=version,
            checkpoint=spec.checkpoint,
            url=spec.url,
            dataset=spec.dataset,
            converted_by=f"encore {encore.__version__}",
            converted_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            tensors=n_tensors,
        ),
        licence=spec.licence,
        input_spec={
            "sample_rate": 16000,
            "n_fft": 512,
            "hop_length": 256,
            "n_mels": 96,
            "mel_filters": "librosa (Slaney)",
            "compression": "log10(1 + 10000 * mel)",
            "patch_frames": MUSICNN_N_FRAMES,
            "patch_seconds": MUSICNN_CHUNK_SECONDS,
        },
    )


def convert_pretrained(name: str, out_dir: str | os.PathLike) -> Path:
    """Convert published model ``name`` into ``out_dir/name/checkpoint.pt``.

    Args:
        name: A name from :data:`encore.pretrained.PRETRAINED` (``musicnn-msd``, ...).
        out_dir: The models folder.

    Returns:
        The checkpoint written.

    Raises:
        ParameterError: An unknown name, or TensorFlow or the package is missing.
        CheckpointError: A variable that does not map onto the port.
    """
    spec = pretrained_spec(name)
    prefix, version = locate_checkpoint(spec)
    variables = read_tf_checkpoint(prefix)
    model = EncoreModel(**network_spec(spec).model_kwargs())
    n_tensors = map_variables(model, variables, spec.backbone, source=f"{spec.package} {version} {spec.checkpoint}")
    path = save_checkpoint(Path(out_dir) / name / "checkpoint.pt", model.eval(), build_card(spec, version, n_tensors))
    logger.info("converted %s (%d tensors) to %s", name, n_tensors, path)
    return path
