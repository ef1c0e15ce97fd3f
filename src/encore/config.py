"""Validated configuration: frozen pydantic models, loaded from YAML with overrides.

Precedence is defaults, then the YAML file, then explicit overrides (``a.b=value``
strings from the CLI or a mapping). The resolved configuration is written into every
run folder and checkpoint, so a run can always be reproduced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from encore.exceptions import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "AugmentConfig",
    "BaselineConfig",
    "BlendConfig",
    "BlendMember",
    "BoostingConfig",
    "EncoreConfig",
    "FeatureConfig",
    "LabelsConfig",
    "ModelConfig",
    "SelectionConfig",
    "TrainConfig",
    "load_config",
    "save_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureConfig(_Strict):
    """Log-mel front end settings; they travel inside the model and its checkpoint.

    The one set of front-end defaults: :class:`~encore.features.logmel.LogMelSpectrogram`
    takes its keyword defaults from here, and a model card's front end is this class.
    """

    sample_rate: int = Field(16000, gt=0)
    n_fft: int = Field(512, gt=0)
    hop_length: int = Field(256, gt=0)
    win_length: int | None = Field(None, gt=0, description="Hann window length (<= n_fft); null = n_fft")
    n_mels: int = Field(64, gt=0)
    f_min: float = Field(0.0, ge=0)
    f_max: float | None = Field(None, gt=0, description="highest mel frequency in Hz; null = half the sample rate")
    power: float = Field(2.0, gt=0, description="exponent of the STFT magnitude (2 power, 1 magnitude)")
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney"] | None = Field("slaney", description="slaney area normalisation of the filters, or null")
    center: bool = True
    pad_mode: Literal["constant", "reflect", "replicate", "circular"] = Field(
        "constant", description="padding at the ends when center (constant = zeros, as librosa)"
    )
    amin: float = Field(1e-10, gt=0, description="floor before the log (power units)")
    top_db: float | None = Field(None, ge=0)
    compression: Literal["db", "log10_1p"] = Field(
        "db", description="db: 10*log10(max(amin, mel)); log10_1p: log10(1 + compression_gain*mel), musicnn's"
    )
    compression_gain: float = Field(10000.0, gt=0)

    @model_validator(mode="after")
    def _band(self) -> FeatureConfig:
        nyquist = self.sample_rate / 2
        upper = self.f_max if self.f_max is not None else nyquist
        if upper > nyquist:
            raise ValueError(f"f_max {upper:g} Hz is above half the sample rate ({nyquist:g} Hz); lower features.f_max")
        if self.f_min >= upper:
            raise ValueError(
                f"f_min {self.f_min:g} Hz must lie below f_max {upper:g} Hz (null f_max: half of sample_rate); "
                "lower features.f_min or raise features.f_max"
            )
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} is longer than n_fft {self.n_fft}; raise features.n_fft")
        if self.compression != "db" and self.top_db is not None:
            raise ValueError("features.top_db applies to compression: db only; set it to null")
        return self


class ModelConfig(_Strict):
    """Which registered backbone to build and its keyword arguments."""

    name: str = "small_cnn"
    dropout: float = Field(0.3, ge=0, lt=1)
    members: int = Field(
        1,
        ge=1,
        le=16,
        description="networks trained side by side on the same batches, each on its own loss, whose logits are "
        "averaged (a deep ensemble in one checkpoint); training and inference cost grow with it; 1 = one network",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    band_statistics: bool = Field(
        False,
        description="song-level heads also read each mel band's mean, spread and flux over the chunk (a wide linear "
        "path beside the backbone, fitted by train.refit_heads after training; needs train.refit_heads)",
    )
    novelty: bool = Field(
        True,
        description="after training, fit a shrunk Mahalanobis distance from the training songs (backbone embedding "
        "and log-mel band statistics) and calibrate it on the validation songs, so every prediction says how unlike "
        "the training songs a song is",
    )


class AugmentConfig(_Strict):
    """Training-only augmentation. Random crops are always on during training."""

    gain_db: float = Field(6.0, ge=0, description="uniform random gain in +/- dB")
    noise_snr_db: float | None = Field(30.0, description="additive white noise at this SNR; null = off")
    noise_p: float = Field(0.5, ge=0, le=1)
    time_masks: int = Field(2, ge=0)
    time_mask_frames: int = Field(12, ge=0)
    freq_masks: int = Field(2, ge=0)
    freq_mask_bins: int = Field(6, ge=0)
    mixup_alpha: float = Field(0.0, ge=0, description="0 = off")
    time_stretch: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="max relative tempo change, e.g. 0.1 = rates in [0.9, 1.1] (log-mel time resampling)",
    )
    pitch_shift_semitones: float = Field(
        0.0,
        ge=0,
        le=12,
        description="max pitch shift in semitones (log-mel resampled along the mel axis); with time_stretch ~8 % of a step",
    )


class TrainConfig(_Strict):
    """The CNN's training loop."""

    epochs: int = Field(30, gt=0)
    batch_size: int = Field(32, gt=0)
    chunk_seconds: float = Field(3.0, gt=0)
    chunks_per_song: int = Field(4, gt=0, description="random crops per training song per epoch")
    chunk_hop_seconds: float | None = Field(
        None,
        gt=0,
        description="distance between chunk starts when a whole song is scored (validation, evaluation, serving); "
        "less than chunk_seconds overlaps the chunks; null = chunk_seconds (no overlap)",
    )
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0, description="decoupled L2 (AdamW)")
    l1: float = Field(0.0, ge=0, description="L1 penalty on weights")
    warmup_epochs: int = Field(1, ge=0)
    grad_clip: float | None = 5.0
    patience: int = Field(8, gt=0, description="early stopping: epochs without val improvement")
    select: Literal["best", "last"] = Field(
        "best",
        description="checkpoint kept: the best validation epoch (with early stopping) or the last epoch of the full "
        "schedule (no early stopping; steadier when the validation split is small)",
    )
    balance: Literal["none", "class_weight", "sampler"] = "class_weight"
    target_weighting: Literal["none", "evidence"] = Field(
        "none",
        description="weigh each song's tag and score losses by the evidence behind them (inverse variance from the "
        "manifest's tag_support and appeal_sd): noisy targets lean on well-voted songs; none = every song alike",
    )
    class_weight: float = Field(1.0, ge=0)
    appeal_weight: float = Field(
        1.0,
        ge=0,
        description="weight of the score (appeal) loss in training; 0 = the backbone never learns the scores and "
        "train.refit_heads fits the score head on whole songs after training (then the backbone's embedding of a "
        "training song does not memorise its score, so the refit weighs it honestly)",
    )
    tags_weight: float = Field(0.5, ge=0)
    aggregate: Literal["mean_probs", "mean_logits"] = "mean_probs"
    refit_heads: list[Literal["tags", "regression"]] = Field(
        default_factory=list,
        description="after training, refit these heads on the training songs' mean embeddings (L2 strength by "
        "cross-validation over the songs): tags as a logistic model on the listener shares, scores by ridge; "
        "[] = keep the heads as trained",
    )
    seed: int = 0
    log_every: int = Field(20, gt=0)
    num_threads: int | None = None
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast for the CNN (log-mel stays fp32); auto = bf16 where the CPU/GPU supports it"
    )
    channels_last: bool = Field(
        True, description="channels-last memory for a backbone that runs faster in it (not musicnn: its registry entry says)"
    )
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="validate and save an exponential moving average of the weights (e.g. 0.99); null = off"
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto = CUDA when available; cpu; cuda; cuda:N (under torchrun each rank takes its LOCAL_RANK's GPU)",
    )
    compile: bool = Field(False, description="torch.compile the network for training (pays off on GPUs; minutes to compile)")
    init_from: str | list[str] | None = Field(
        None,
        description="a run folder or checkpoint whose backbone starts this run (transfer); or a list of published "
        "models (pretrained:NAME) that read the same input, side by side as the members of one model",
    )
    freeze_backbone: bool = Field(
        False,
        description="with init_from: keep the copied layers as they are and fit the heads on the training songs' "
        "mean embeddings (the song-level probe: one pass over the songs, no epoch loop)",
    )
    tune_top: bool = Field(
        False,
        description="with freeze_backbone: after the probe, fine-tune the top of each copied backbone (musicnn's dense back "
        "end) and the class head on every chunk of the training songs, for train.epochs at train.lr (the top at "
        "train.init_lr_scale of it), from the frozen layers' output computed once (cached like the embeddings); the "
        "tag and score heads are refitted on the tuned embeddings",
    )
    init_lr_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description="with init_from (fine-tuning): the copied layers' learning rate as a fraction of train.lr, "
        "e.g. 0.1 for a pretrained model; the new heads train at train.lr",
    )


class SelectionConfig(_Strict):
    """Feature selection by importance for the classical baseline (see encore.train.selection)."""

    enabled: bool = Field(False, description="keep only the most important features, how many chosen by inner CV")
    fractions: list[float] = Field(
        default_factory=lambda: [0.125, 0.25, 0.5, 1.0], description="candidate shares of the features to keep"
    )
    n_estimators: int = Field(200, gt=0, description="trees of each forest that ranks or scores features")


class BoostingConfig(_Strict):
    """Histogram gradient boosting for the classical baseline (see encore.train.boosting)."""

    learning_rate: float = Field(0.05, gt=0, le=1)
    max_iter: int = Field(300, gt=0, description="most iterations; the number used is chosen on inner folds")
    max_leaf_nodes: int = Field(15, ge=2)
    min_samples_leaf: int = Field(10, gt=0)
    l2_regularization: float = Field(1.0, ge=0)
    n_threads: int = Field(1, gt=0, description="OpenMP threads per fit (more only pays on thousands of songs)")


class SvmConfig(_Strict):
    """RBF support-vector machines for the classical baseline (see encore.train.svm)."""

    c_grid: list[float] = Field(
        default_factory=lambda: [0.3, 1.0, 3.0, 10.0, 30.0], description="candidate C values, chosen on inner folds"
    )
    gamma_scales: list[float] = Field(
        default_factory=lambda: [0.3, 1.0, 3.0],
        description="candidate kernel widths as multiples of 1/n_features (standardised features), chosen on inner folds",
    )


ClassicalEstimator = Literal["random_forest", "gradient_boosting", "svm"]


def _forest_and_svm() -> list[ClassicalEstimator]:
    return ["random_forest", "svm"]


class EnsembleConfig(_Strict):
    """Soft voting over classical estimators for ``baseline.estimator: ensemble`` (see encore.train.vote)."""

    members: list[ClassicalEstimator] = Field(
        default_factory=_forest_and_svm,
        description="the estimators whose class probabilities and predictions are averaged, each with its own settings",
    )
    weights: list[float] | None = Field(None, description="one weight per member; null = equal weights")

    @model_validator(mode="after")
    def _members(self) -> EnsembleConfig:
        if len(set(self.members)) != len(self.members) or len(self.members) < 2:
            raise ValueError(
                f"baseline.ensemble.members={self.members} must name at least two different estimators, "
                "e.g. '[random_forest, svm]'"
            )
        if self.weights is not None and (
            len(self.weights) != len(self.members) or min(self.weights) < 0 or sum(self.weights) <= 0
        ):
            raise ValueError(
                f"baseline.ensemble.weights={self.weights} needs one non-negative weight per member "
                f"({len(self.members)}), not all zero, or null for equal weights"
            )
        return self


class BaselineConfig(_Strict):
    """The classical baseline: a random forest, gradient boosting, an SVM or a vote of them on handcrafted features."""

    estimator: Literal["random_forest", "gradient_boosting", "svm", "ensemble"] = "random_forest"
    inner_folds: int = Field(3, ge=2, description="inner cross-validation folds for selection and early stopping")
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    boosting: BoostingConfig = Field(default_factory=BoostingConfig)
    svm: SvmConfig = Field(default_factory=SvmConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    n_estimators: int = Field(300, gt=0)
    max_depth: int | None = None
    min_samples_leaf: int = Field(1, gt=0)
    max_features: str | float = "sqrt"
    class_weight: Literal["balanced", "none"] = "balanced"
    target_weighting: Literal["none", "evidence"] = Field(
        "none",
        description="as train.target_weighting, as sample weights of the score and tag models (each target its own where "
        "a model is fitted a target at a time: the SVM, boosting; the mean of a song's targets' weights for a forest)",
    )
    score_transform: Literal["none", "normal_scores"] = Field(
        "none",
        description="the score head's training targets: as they are, or the normal scores of their ranks among the "
        "training songs (its loss then follows the ranking); a prediction is mapped back to the score's own scale",
    )
    n_fft: int = Field(2048, gt=0)
    hop_length: int = Field(512, gt=0)
    segment_seconds: float | None = Field(
        None,
        gt=0,
        description="train on segments of this length, each with its song's targets, and predict a song as the mean "
        "of its segments' predictions; null = one summary of the whole song",
    )
    max_segments: int = Field(6, ge=1, description="with segment_seconds: at most this many segments a song, evenly spaced")
    n_jobs: int = -1
    seed: int = 0


class LabelsConfig(_Strict):
    """How feedback becomes targets, and how songs are split."""

    classes: list[str] | None = Field(None, description="class vocabulary voted from tags; null = use label_set")
    label_set: str | None = Field(None, description="catalogue label set giving the class instead of tag votes")
    min_margin: float = Field(0.2, ge=0, le=1)
    min_votes: int = Field(3, ge=1)
    weight_listeners: bool = True
    min_tag_listeners: int = Field(3, ge=1)
    max_tags: int = Field(20, ge=0)
    stop_tags: list[str] | None = Field(None, description="null = encore's default stop list")
    synonyms: dict[str, str] = Field(default_factory=dict)
    synonyms_file: str | None = None
    skip_ms: float = Field(30000.0, ge=0)
    skip_fraction: float = Field(0.3, ge=0, le=1)
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0

    @model_validator(mode="after")
    def _fractions(self) -> LabelsConfig:
        if self.classes is not None and len(set(self.classes)) < 2:
            raise ValueError(
                f"classes lists {len(set(self.classes))} distinct name(s); list at least two, e.g. "
                "labels.classes='[rock, jazz]', or leave it null to take classes from labels.label_set"
            )
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:.2f} "
                "leaves too little for training; keep their sum below 0.9"
            )
        return self


BlendKind = Literal["cnn", "random_forest", "gradient_boosting", "svm", "ensemble"]


class BlendMember(_Strict):
    """One model of a blend: trained on the blend's songs from its own config, its predictions weighted."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="its folder under the run's members/")
    kind: BlendKind = Field(description="how it trains, as `encore train --model` takes it")
    config: str | None = Field(
        None, description="its YAML config; a relative path in a file is read beside that file; null = the defaults"
    )
    set: list[str] = Field(default_factory=list, description="section.key=value overrides of its config")
    weight: float = Field(gt=0, description="its share of the blend's average (the weights are normalised)")


class BlendConfig(_Strict):
    """``--model blend``: late fusion, the weighted mean of several models' song-level predictions.

    Each member trains on the same songs from its own config, and a song's class
    probabilities, tag shares and scores are the weighted mean of the members' that have
    that head. ``overrides`` reach every member after its own file and ``set``: `encore cv`
    and `encore train` put their ``--set`` there, and `encore cv` its seeds and device.
    """

    members: list[BlendMember] = Field(default_factory=list)
    overrides: list[str] = Field(
        default_factory=list, description="section.key=value settings applied to every member (filled by encore cv)"
    )

    @model_validator(mode="after")
    def _names(self) -> BlendConfig:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"blend.members are named {names}; give each member its own name")
        return self


class EncoreConfig(_Strict):
    """Everything one run needs."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    blend: BlendConfig = Field(default_factory=BlendConfig)

    @model_validator(mode="after")
    def _band_statistics_need_a_refit(self) -> EncoreConfig:
        if self.model.band_statistics and not self.train.refit_heads:
            raise ValueError(
                "model.band_statistics=true adds song-level weights that only train.refit_heads fits; "
                "set train.refit_heads (e.g. [tags, regression]) or model.band_statistics=false"
            )
        if self.train.appeal_weight == 0 and "regression" not in self.train.refit_heads:
            raise ValueError(
                "train.appeal_weight=0 leaves the score head untrained; add regression to train.refit_heads "
                "(fitted on whole songs after training) or set train.appeal_weight above 0"
            )
        if self.train.tune_top and not self.train.freeze_backbone:
            raise ValueError(
                "train.tune_top fine-tunes the top of a frozen pretrained backbone after the probe; "
                "set train.freeze_backbone=true (with train.init_from) or train.tune_top=false"
            )
        if self.train.tune_top and self.model.band_statistics:
            raise ValueError("train.tune_top does not take model.band_statistics; set one of them to false")
        return self


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r} must look like section.key=value, e.g. --set train.epochs=5")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item!r} has an empty key; write section.key=value, e.g. --set train.epochs=5")
    return path, yaml.safe_load(raw)


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {part} is a value, not a section with keys")
        node = child
    node[path[-1]] = value


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> EncoreConfig:
    """Load and validate a configuration.

    Args:
        path: A YAML file; ``None`` gives the defaults.
        overrides: Either ``{"train.epochs": 5}`` or ``["train.epochs=5"]``.

    Returns:
        The frozen, validated configuration.

    Raises:
        ConfigError: The file is missing or not YAML, or a key or value is invalid
            (the message gives the key's dotted path).
    """
    tree: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} does not exist; pass a YAML file such as configs/default.yaml")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {str(file)!r} is not valid YAML: {_yaml_problem(err)}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {str(file)!r} must hold sections of keys (train:, model:, ...), "
                f"not a {'list' if isinstance(loaded, list) else 'single value'}; see configs/default.yaml"
            )
        tree = loaded or {}
        _anchor_member_configs(tree, file.parent)
        lines = _key_lines(file.read_text(encoding="utf-8"))
    items: list[tuple[list[str], Any]] = []
    if isinstance(overrides, Mapping):
        items = [(str(k).split("."), v) for k, v in overrides.items()]
    elif overrides is not None:
        items = [_parse_override(o) for o in overrides]
    for key_path, value in items:
        _set_path(tree, key_path, value)
        lines[tuple(key_path)] = 0  # an override set it, not the file
    try:
        return EncoreConfig.model_validate(tree)
    except ValidationError as err:
        problems = "; ".join(_config_problem(e, lines) for e in err.errors())
        where = f" in {path}" if path is not None else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from err


def _anchor_member_configs(tree: dict[str, Any], folder: Path) -> None:
    """A blend member's relative ``config`` names a file beside the blend's own file (as an include does)."""
    blend = tree.get("blend")
    members = blend.get("members") if isinstance(blend, dict) else None
    for member in members if isinstance(members, list) else []:
        path = member.get("config") if isinstance(member, dict) else None
        if isinstance(path, str) and not Path(path).is_absolute():
            member["config"] = os.path.normpath(folder / path)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (1-based) each key path of a YAML mapping is written on."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    path = (*prefix, str(key.value))
                    lines[path] = key.start_mark.line + 1
                    walk(value, path)

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:
        pass
    return lines


def _config_problem(error: Mapping[str, Any], lines: Mapping[tuple[str, ...], int] | None = None) -> str:
    """One validation error as ``key is value (line N): what is wrong``, in a config file's words."""
    loc = tuple(str(p) for p in error["loc"])
    lines = lines or {}
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    key = ".".join(loc) + (" (from --set)" if line == 0 else f" (line {line})" if line else "")
    kind, message = error.get("type", ""), str(error.get("msg", ""))
    if kind == "extra_forbidden":
        return f"{key}: unknown key; configs/default.yaml lists every key"
    message = message.removeprefix("Value error, ").replace("Input should be", "should be")
    if kind == "missing":
        return f"{key}: missing"
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f"{key} is {value!r}: {message[:1].lower()}{message[1:]}"
    return f"{key}: {message}"


def _yaml_problem(err: Exception) -> str:
    """A YAML parse error as ``line L, column C: problem``."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def save_config(config: EncoreConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return out
