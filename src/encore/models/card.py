"""Model cards: what a run needs to be rebuilt and used, as typed, versioned objects.

Every model encore writes carries one: a CNN checkpoint its :class:`ModelCard` (inside
``checkpoint.pt`` and, as JSON, in an exported ONNX file's metadata), a classical run its
:class:`ClassicalCard` (``model_card.json``). Everything else reads the card's fields and
properties; this module alone knows how a card is stored and how an older one is read.

A CNN card holds the network to rebuild (:class:`NetworkSpec`, whose front end is the same
:class:`~encore.config.FeatureConfig` the YAML's ``features:`` section is), the chunk spec
(:class:`ChunkSpec`: samples and hop computed here once), the label, tag and score names,
the aggregation, the calibration, the score scaling, the training record, the song-level
refit and probe reports, the novelty calibration and, for a published model converted by
``encore pretrained convert``, its ``pretrained`` name, ``origin``, ``licence`` and
``input_spec``.

Version 1 cards (a plain dict: ``model_kwargs``, ``chunk_seconds``, ``chunk_hop_seconds``
and a top-level ``temperature``; classical cards without a version) are migrated on
reading by :func:`migrate_card`; a card newer than this encore is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import encore
from encore.config import FeatureConfig
from encore.exceptions import CheckpointError
from encore.features.extract import HANDCRAFTED_VERSION

__all__ = [
    "CARD_VERSION",
    "Calibration",
    "BlendCard",
    "BlendMemberRecord",
    "ChunkSpec",
    "ClassicalCard",
    "HandcraftedSettings",
    "ManifestRecord",
    "ModelCard",
    "NetworkSpec",
    "NoveltyCalibration",
    "Origin",
    "RegressionStats",
    "SegmentSettings",
    "TrainingRecord",
    "migrate_card",
]

CARD_VERSION: Final = 2
"""The card version this encore writes; it reads this one and version 1."""

Aggregate = Literal["mean_probs", "mean_logits"]
ClassicalKind = Literal["random_forest", "gradient_boosting", "svm", "ensemble"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Report(BaseModel):
    """A record whose named fields encore reads; whatever else it holds is kept as written."""

    model_config = ConfigDict(extra="allow")


class ManifestRecord(_Part):
    """The manifest a run was trained from: its path, content digest and summary."""

    path: str | None = None
    digest: str
    summary: dict[str, Any] = Field(default_factory=dict)


class ChunkSpec(_Part):
    """How songs are cut into chunks for the network; ``hop_seconds`` None = no overlap."""

    seconds: float = Field(gt=0)
    hop_seconds: float | None = Field(None, gt=0)

    def samples(self, sample_rate: int) -> int:
        """A chunk's length in samples at ``sample_rate``."""
        return int(round(self.seconds * sample_rate))

    def hop_samples(self, sample_rate: int) -> int:
        """The distance between chunk starts in samples (at least 1, at most a chunk)."""
        length = self.samples(sample_rate)
        return min(length, max(1, int(round((self.hop_seconds or self.seconds) * sample_rate))))


class Calibration(_Report):
    """The class temperature and how it was fitted (1 = none); the fit's statistics ride along."""

    temperature: float = Field(1.0, gt=0)
    method: str | None = None
    fitted_on: str | None = None
    kept: bool | None = None
    reason: str | None = None
    fitted_temperature: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    n_songs: int | None = None
    cross_fit: dict[str, Any] | None = None

    def record(self) -> dict[str, Any] | None:
        """What was fitted, as plain values; None when the card was never calibrated."""
        return self.model_dump(mode="json", exclude_none=True) if self.method is not None else None


class RegressionStats(_Part):
    """The training songs' score means and spreads: the score head predicts standardised scores."""

    mean: list[float] = Field(default_factory=list)
    std: list[float] = Field(default_factory=list)

    @property
    def shift(self) -> np.ndarray:
        """What is added back to a standardised score (0 when the card has no scores)."""
        return np.asarray(self.mean if self.mean else 0.0, dtype=np.float64)

    @property
    def scale(self) -> np.ndarray:
        """What a standardised score is multiplied by (1 when the card has no scores)."""
        return np.asarray(self.std if self.std else 1.0, dtype=np.float64)


class TrainingRecord(_Report):
    """How the network was trained: precision, memory format, processes."""

    precision: str = "float32"
    channels_last: bool = False
    world_size: int = 1


class NoveltyCalibration(_Report):
    """The novelty score's scale: held-out songs' distance quantiles and the "novel" threshold."""

    fitted: bool = False
    reason: str | None = None
    features: int | None = None
    shrinkage: float | None = None
    train_songs: int | None = None
    reference: str | None = None
    reference_songs: int | None = None
    percentiles: list[float] = Field(default_factory=list)
    quantiles: list[float] = Field(default_factory=list)
    threshold: float | None = None
    threshold_percentile: float | None = None

    @property
    def usable(self) -> bool:
        return bool(self.quantiles) and self.threshold is not None


class Origin(_Report):
    """Where a published model came from (paper, package, checkpoint, data set, conversion)."""

    paper: str | None = None
    package: str | None = None
    package_version: str | None = None
    checkpoint: str | None = None
    url: str | None = None
    dataset: str | None = None
    converted_by: str | None = None
    converted_at: str | None = None
    tensors: int | None = None


class NetworkSpec(_Part):
    """The keyword arguments that rebuild the :class:`~encore.models.classifier.EncoreModel`."""

    frontend: FeatureConfig
    backbone: str
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    label_names: list[str] = Field(default_factory=list)
    tag_names: list[str] = Field(default_factory=list)
    regression_names: list[str] = Field(default_factory=list)
    dropout: float = 0.3
    spec_augment: dict[str, Any] | None = None
    n_members: int = Field(1, ge=1)
    band_statistics: bool = False
    novelty: bool = False

    def model_kwargs(self) -> dict[str, Any]:
        """``EncoreModel(**spec.model_kwargs())`` rebuilds the network."""
        return self.model_dump(mode="json")


class _Card(BaseModel):
    """What every card has: version, the encore that wrote it, the run's config, manifest and metrics."""

    model_config = ConfigDict(extra="forbid")

    card_version: Literal[2] = CARD_VERSION
    encore_version: str = encore.__version__
    config: dict[str, Any] | None = None
    manifest: ManifestRecord | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-able values (how a checkpoint and a run folder store it)."""
        return self.model_dump(mode="json")

    @property
    def seed(self) -> int:
        """The training seed the run's config records (0 when it records none)."""
        return int(((self.config or {}).get("train") or {}).get("seed", 0))


class ModelCard(_Card):
    """A CNN checkpoint's card (``model_type: cnn``).

    Example:
        >>> card = ModelCard(network=NetworkSpec(frontend=FeatureConfig(), backbone="small_cnn"),
        ...                  chunk=ChunkSpec(seconds=3.0))
        >>> card.chunk_samples, card.hop_samples
        (48000, 48000)
    """

    model_type: Literal["cnn"] = "cnn"
    network: NetworkSpec
    chunk: ChunkSpec
    aggregate: Aggregate = "mean_probs"
    aggregate_tags: Aggregate | None = None
    calibration: Calibration = Field(default_factory=Calibration)
    regression_stats: RegressionStats = Field(default_factory=RegressionStats)
    training: TrainingRecord | None = None
    best_epoch: int | None = None
    transfer: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    refit: dict[str, Any] | None = None
    novelty: NoveltyCalibration | None = None
    pretrained: str | None = None
    origin: Origin | None = None
    licence: str | None = None
    input_spec: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the model card") -> ModelCard:
        """Read a stored card, migrating a version-1 one.

        Raises:
            CheckpointError: The card is from a newer encore, or does not read as a card.
        """
        return _validate(cls, migrate_card(data, source=source), source)

    @property
    def sample_rate(self) -> int:
        return self.network.frontend.sample_rate

    @property
    def chunk_samples(self) -> int:
        return self.chunk.samples(self.sample_rate)

    @property
    def hop_samples(self) -> int:
        return self.chunk.hop_samples(self.sample_rate)

    @property
    def label_names(self) -> list[str]:
        return list(self.network.label_names)

    @property
    def tag_names(self) -> list[str]:
        return list(self.network.tag_names)

    @property
    def regression_names(self) -> list[str]:
        return list(self.network.regression_names)

    @property
    def model_name(self) -> str:
        """The backbone's registered name."""
        return self.network.backbone

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    @property
    def mean_logits(self) -> tuple[bool, bool]:
        """Whether the classes and the tags are aggregated over chunks as mean logits (else mean probabilities)."""
        return self.aggregate == "mean_logits", (self.aggregate_tags or self.aggregate) == "mean_logits"

    @property
    def trained_in_bf16(self) -> bool:
        return self.training is not None and self.training.precision == "bfloat16"

    @property
    def published(self) -> bool:
        """A published model converted by ``encore pretrained convert`` (it has an origin)."""
        return self.origin is not None

    def uncalibrated(self) -> ModelCard:
        """The same card with temperature 1 (the network's raw probabilities)."""
        return self.model_copy(update={"calibration": Calibration()})


class HandcraftedSettings(_Part):
    """The handcrafted features' STFT settings and version (also their cache key)."""

    kind: Literal["handcrafted"] = "handcrafted"
    version: int = HANDCRAFTED_VERSION
    sample_rate: int = Field(gt=0)
    n_fft: int = Field(gt=0)
    hop_length: int = Field(gt=0)
    n_mfcc: int = Field(20, gt=0)


class SegmentSettings(_Part):
    """How a classical run cuts songs into segments (:func:`encore.features.extract.segment_waveforms`)."""

    seconds: float = Field(gt=0)
    max_segments: int = Field(ge=1)


_C = TypeVar("_C", bound="_JsonCard")


class _JsonCard(_Card):
    """A card stored as a run folder's JSON file (a classical run's ``model_card.json``, a blend's ``blend_card.json``)."""

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any], *, source: str = "the model card") -> _C:
        """Read a stored card, migrating a version-1 one.

        Raises:
            CheckpointError: The card is from a newer encore, or does not read as a card.
        """
        return _validate(cls, migrate_card(data, source=source), source)

    @classmethod
    def read(cls: type[_C], path: str | os.PathLike) -> _C:
        """Read a run's card file.

        Raises:
            CheckpointError: The file is not JSON or not a model card of its kind.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{str(path)!r} could not be read as a model card ({err}); train the run again") from None
        return cls.from_dict(data, source=repr(str(path)))

    def write(self, path: str | os.PathLike) -> Path:
        """Write the card as indented JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


class ClassicalCard(_JsonCard):
    """A classical run's card (``model_card.json`` beside ``model.joblib``)."""

    model_type: ClassicalKind
    sample_rate: int = Field(gt=0)
    feature_settings: HandcraftedSettings
    segments: SegmentSettings | None = Field(
        None, description="the models read segments and a song is the mean of its segments; None = one row a song"
    )
    feature_names: list[str]
    feature_families: dict[str, list[str]] = Field(default_factory=dict)
    label_names: list[str] = Field(default_factory=list)
    tag_names: list[str] = Field(default_factory=list)
    regression_names: list[str] = Field(default_factory=list)
    classes_: list[int] = Field(default_factory=list)
    feature_importance: dict[str, list[float] | None] = Field(default_factory=dict)
    importance_kind: str | None = None
    heads: dict[str, dict[str, Any]] = Field(default_factory=dict)
    trained_on: dict[str, Any] = Field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.model_type

    @property
    def trained_on_validation(self) -> bool:
        """The model trained on the validation songs too (classical models do not early-stop)."""
        return "val" in self.trained_on.get("splits", [])

    @property
    def selections(self) -> dict[str, Any]:
        """Per head, the features kept by selection by importance (empty without selection)."""
        return {head: entry["selection"] for head, entry in self.heads.items() if "selection" in entry}

    def ranked_importance(self, head: str = "classifier") -> list[tuple[str, float]]:
        """``head``'s training-song importances, largest first ([] when it has none)."""
        values = self.feature_importance.get(head)
        if not values:
            return []
        return sorted(zip(self.feature_names, values, strict=True), key=lambda pair: -pair[1])


class BlendMemberRecord(_Part):
    """One member of a blend: its folder under the run's ``members/``, its kind and its normalised weight."""

    name: str
    kind: str
    weight: float = Field(gt=0)
    sample_rate: int = Field(gt=0)


class BlendCard(_JsonCard):
    """A blend's card (``blend_card.json`` beside ``members/<name>/``, each a run folder with its own card).

    A song's prediction is the weighted mean of its members' (``members``' weights sum to
    1; a head only some members have is the mean of theirs, renormalised).
    """

    model_type: Literal["blend"] = "blend"
    sample_rate: int = Field(gt=0, description="the highest member rate: what the blend reads a waveform at")
    members: list[BlendMemberRecord]
    label_names: list[str] = Field(default_factory=list)
    tag_names: list[str] = Field(default_factory=list)
    regression_names: list[str] = Field(default_factory=list)
    trained_on_validation: bool = Field(False, description="a member trained on the validation songs (a classical one)")

    @property
    def model_name(self) -> str:
        return "blend of " + " + ".join(f"{m.name} ({m.kind}, {m.weight:.2f})" for m in self.members)


def migrate_card(data: Mapping[str, Any], *, source: str = "the model card") -> dict[str, Any]:
    """A stored card in this version's form: version 1 is converted, version 2 passed through.

    Version 1 (before cards were typed) stored the network's arguments as ``model_kwargs``,
    the chunk as ``chunk_seconds`` and ``chunk_hop_seconds``, and the class temperature both
    at the top level and under ``calibration``; a classical card had no version.

    Raises:
        CheckpointError: A version this encore does not know (a newer encore wrote it).
    """
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source} is not a model card; it was not written by encore")
    card = dict(data)
    version = card.get("card_version", 1)
    if version == CARD_VERSION:
        return card
    if version != 1:
        raise CheckpointError(
            f"{source} has model card version {version!r}, this encore reads versions 1 and {CARD_VERSION}; "
            "retrain or use a matching encore"
        )
    card["card_version"] = CARD_VERSION
    if card.get("model_type", "cnn") != "cnn":
        return card
    kwargs = dict(card.pop("model_kwargs", None) or {})
    if kwargs.pop("cepstral_statistics", 0):
        raise CheckpointError(f"{source} uses cepstral statistics, which this encore no longer has; retrain the run without them")
    card["network"] = kwargs
    seconds = card.pop("chunk_seconds", None)
    hop = card.pop("chunk_hop_seconds", None)
    if seconds is not None:
        card["chunk"] = {"seconds": seconds, "hop_seconds": hop}
    temperature = card.pop("temperature", None)
    calibration = dict(card.get("calibration") or {})
    if temperature is not None:
        calibration.setdefault("temperature", temperature)
    card["calibration"] = calibration
    return card


def _validate(cls: type[Any], data: dict[str, Any], source: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'card'}: {e['msg']}" for e in err.errors(include_url=False))
        raise CheckpointError(f"{source} does not read as a model card ({problems}); it is damaged or not from encore") from None
