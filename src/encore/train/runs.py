"""Training runs inside a workspace: decode the manifest's songs once, then fit.

Which code trains a model kind is one row of :data:`TRAINERS`: a new model (a
gradient-boosting baseline, say) is one :class:`Trainer` added there, and ``encore
train --model``, ``encore cv --model`` and the demo all find it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encore.config import EncoreConfig
from encore.data.manifest import Manifest
from encore.data.waveforms import DecodeFailure, decode_songs
from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache
from encore.progress import ProgressHook
from encore.workspace import Workspace

logger = logging.getLogger(__name__)

__all__ = ["TRAINERS", "Trainer", "decode_manifest", "get_trainer", "train_run"]

ModelKind = str
"""A key of :data:`TRAINERS` (``cnn``, ``random_forest``, ``gradient_boosting``, ``svm``, ``ensemble``, ``blend``)."""


@dataclass(frozen=True)
class TrainContext:
    """What a trainer gets besides the manifest, the songs, the config and the run folder."""

    manifest_path: str
    cache: FeatureCache
    epoch_callback: Callable[[dict], None] | None = None
    songs_at: Callable[[int], Mapping[str, np.ndarray | None]] | None = None
    """The manifest's songs decoded at another rate (a blend's members read several); None = decode them here."""
    progress: ProgressHook | None = None
    """Starts a progress task for work that is not epochs (features, embeddings); None = none drawn."""


def _fit_cnn(manifest: Manifest, waveforms: Mapping, config: EncoreConfig, run_dir: Path, ctx: TrainContext) -> None:
    from encore.train.loop import fit

    fit(manifest, waveforms, config, run_dir, manifest_path=ctx.manifest_path, callback=ctx.epoch_callback, progress=ctx.progress)


def _classical(estimator: str) -> Callable[[Manifest, Mapping, EncoreConfig, Path, TrainContext], None]:
    """The trainer of a classical model on handcrafted features (``baseline.estimator`` set to ``estimator``)."""

    def fit(manifest: Manifest, waveforms: Mapping, config: EncoreConfig, run_dir: Path, ctx: TrainContext) -> None:
        from encore.train.baseline import fit_baseline

        config = config.model_copy(update={"baseline": config.baseline.model_copy(update={"estimator": estimator})})
        fit_baseline(
            manifest, waveforms, config, run_dir, manifest_path=ctx.manifest_path, cache=ctx.cache, progress=ctx.progress
        )

    return fit


def _fit_blend(manifest: Manifest, waveforms: Mapping, config: EncoreConfig, run_dir: Path, ctx: TrainContext) -> None:
    from encore.train.blend import MemberPlan, fit_blend

    decoded = {TRAINERS["blend"].sample_rate(config): waveforms}

    def songs_at(rate: int) -> Mapping[str, np.ndarray | None]:
        if rate not in decoded:
            if ctx.songs_at is not None:
                decoded[rate] = ctx.songs_at(rate)
            else:
                decoded[rate], failures = decode_songs(manifest.frame, sample_rate=rate, cache=ctx.cache)
                for failure in failures:
                    logger.warning("song skipped: %s (%s)", failure.path, failure.reason)
        return decoded[rate]

    def fit_member(plan: MemberPlan, songs: Mapping, folder: Path) -> None:
        member_ctx = TrainContext(manifest_path=ctx.manifest_path, cache=ctx.cache, progress=ctx.progress)
        get_trainer(plan.member.kind).fit(manifest, songs, plan.config, folder, member_ctx)

    fit_blend(manifest, songs_at, config, run_dir, manifest_path=ctx.manifest_path, fit_member=fit_member)


def _never(config: EncoreConfig) -> bool:
    return False


def _cnn_uses_validation(config: EncoreConfig) -> bool:
    """The epoch loop early-stops and calibrates on validation songs; a song-level probe
    (``freeze_backbone``) fits its heads by cross-validation over its training songs, so in
    ``encore cv`` it trains on every song outside the test fold, as the blend's probe does."""
    return not config.train.freeze_backbone


def _cnn_epochs(config: EncoreConfig) -> int | None:
    """The epochs a CNN reports: the epoch loop's, or a probe's tuning (``tune_top``); a plain probe has none."""
    tc = config.train
    return None if tc.freeze_backbone and not tc.tune_top else tc.epochs


def _blend_rates(config: EncoreConfig) -> list[int]:
    from encore.train.blend import member_rates

    return member_rates(config)


@dataclass(frozen=True)
class Trainer:
    """How one model kind trains.

    Attributes:
        fit: ``fit(manifest, waveforms, config, run_dir, ctx)`` writes a run folder that
            :func:`encore.inference.load_predictor` reads.
        sample_rate: The rate its songs are decoded at, from the resolved config.
        uses_validation: Whether training with this config reads the manifest's ``val``
            split (the CNN's early stopping and calibration); a model that does not (a
            classical model, a song-level probe, a blend) trains on those songs too when
            ``encore cv`` holds a validation share out.
        resumable: Whether an existing run folder resumes (the CNN's ``last.pt``)
            rather than starting over.
        epochs: The number of progress steps :attr:`fit` reports through
            ``ctx.epoch_callback``, or None when it reports none.
        sample_rates: Every rate :attr:`fit` reads songs at (through ``ctx.songs_at``
            beyond the first); None = :attr:`sample_rate` alone.
    """

    fit: Callable[[Manifest, Mapping, EncoreConfig, Path, TrainContext], None]
    sample_rate: Callable[[EncoreConfig], int]
    uses_validation: Callable[[EncoreConfig], bool]
    resumable: bool
    epochs: Callable[[EncoreConfig], int | None]
    sample_rates: Callable[[EncoreConfig], list[int]] | None = None

    def rates(self, config: EncoreConfig) -> list[int]:
        """Every rate this model's songs are decoded at."""
        return self.sample_rates(config) if self.sample_rates is not None else [self.sample_rate(config)]


CLASSICAL_KINDS = ("random_forest", "gradient_boosting", "svm", "ensemble")
"""The classical estimators (``baseline.estimator``): whole-song features, no epochs, no validation songs held out."""

TRAINERS: dict[str, Trainer] = {
    "cnn": Trainer(
        _fit_cnn, lambda c: c.features.sample_rate, uses_validation=_cnn_uses_validation, resumable=True, epochs=_cnn_epochs
    ),
    **{
        kind: Trainer(
            _classical(kind), lambda c: c.features.sample_rate, uses_validation=_never, resumable=False, epochs=lambda c: None
        )
        for kind in CLASSICAL_KINDS
    },
    "blend": Trainer(
        _fit_blend,
        lambda c: max(_blend_rates(c)),
        uses_validation=_never,
        resumable=False,
        epochs=lambda c: None,
        sample_rates=_blend_rates,
    ),
}
"""Model kind -> trainer; one row per model kind."""


def get_trainer(kind: str) -> Trainer:
    """The trainer of a model kind.

    Raises:
        ParameterError: the kind is not in :data:`TRAINERS`.
    """
    try:
        return TRAINERS[kind]
    except KeyError:
        raise ParameterError(f"model {kind!r} is unknown; choose one of {sorted(TRAINERS)}") from None


def decode_manifest(
    manifest: Manifest, ws: Workspace, *, sample_rate: int, callback: Callable[[int], None] | None = None
) -> tuple[dict[str, np.ndarray | None], list[DecodeFailure]]:
    """Every song of the manifest decoded at ``sample_rate`` through the workspace cache (:func:`decode_songs`)."""
    return decode_songs(manifest.frame, sample_rate=sample_rate, cache=FeatureCache(ws.cache_dir), callback=callback)


def train_run(
    ws: Workspace,
    config: EncoreConfig,
    *,
    kind: ModelKind = "cnn",
    manifest_path: str | Path | None = None,
    name: str | None = None,
    run_dir: str | Path | None = None,
    waveforms: dict[str, np.ndarray | None] | None = None,
    decode_callback: Callable[[int], None] | None = None,
    epoch_callback: Callable[[dict], None] | None = None,
    songs_at: Callable[[int], Mapping[str, np.ndarray | None]] | None = None,
    progress: ProgressHook | None = None,
) -> Path:
    """Train one model on a workspace manifest; returns the run folder.

    Args:
        ws: The workspace.
        config: Resolved configuration.
        kind: A key of :data:`TRAINERS` (``cnn`` or a classical kind of :data:`CLASSICAL_KINDS`).
        manifest_path: Default ``manifests/default.csv``.
        name: Run name under ``runs/`` (default the model kind); ignored with ``run_dir``.
        run_dir: Resume or write this run folder explicitly.
        waveforms: Already-decoded songs by track id (else decoded here).
        songs_at: The songs at another rate, for a model that reads several (a blend);
            None = decoded when needed.
        progress: Starts a progress task for work that is not epochs (features, embeddings).

    Raises:
        ParameterError: an unknown model kind.
    """
    trainer = get_trainer(kind)
    manifest_path = Path(manifest_path) if manifest_path else ws.manifest_path()
    manifest = Manifest.read(manifest_path)
    if waveforms is None:
        waveforms, failures = decode_manifest(manifest, ws, sample_rate=trainer.sample_rate(config), callback=decode_callback)
        for failure in failures:
            logger.warning("song skipped: %s (%s)", failure.path, failure.reason)
    out = Path(run_dir) if run_dir else ws.new_run_dir(name or kind)
    ctx = TrainContext(
        manifest_path=str(manifest_path),
        cache=FeatureCache(ws.cache_dir),
        epoch_callback=epoch_callback,
        songs_at=songs_at,
        progress=progress,
    )
    trainer.fit(manifest, waveforms, config, out, ctx)
    return out
