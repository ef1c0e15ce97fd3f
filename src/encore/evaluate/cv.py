"""Cross-validation of several models on one workspace manifest: the same folds for all.

Songs are dealt into ``k`` folds stratified by class label with no artist in two folds
(:func:`encore.targets.splits.kfold_by_artist`; a song with no artist is a group of its
own). Round ``i`` tests on fold ``i`` and trains on the others; a model whose trainer
reads a validation split (the CNN: early stopping, calibration) gets an artist-grouped,
stratified share of the training folds held out as ``val``, any other trains on all of
them. Every model and every training seed sees the same folds.

Everything lives in ``WS/cv/NAME/``::

    plan.json                 folds, seeds, models and their resolved configs
    folds.csv                 track_id, artist, label, fold
    folds/fold<i>[-noval].csv the manifest of round i (as `encore train` reads one)
    runs/<model>/seed<s>-fold<i>/   a run folder, plus heldout.csv once it is scored
    predictions/<model>.csv   every held-out prediction, one row per seed and song
    report.json, report.html  see :mod:`encore.evaluate.cv_summary` and :mod:`encore.evaluate.cv_report`

A unit (model, seed, fold) is done when its ``heldout.csv`` exists, so a killed run
picks up at the first unit without one; a CNN unit killed mid-training resumes from its
``last.pt``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from encore.config import EncoreConfig, load_config
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.devices import DEVICE_HELP, DEVICE_PATTERN
from encore.exceptions import ParameterError
from encore.targets.splits import kfold_by_artist, split_by_artist
from encore.workspace import Workspace

logger = logging.getLogger(__name__)

__all__ = ["CVPlan", "CVProgress", "ModelSpec", "assign_folds", "fold_manifest", "parse_model_spec", "run_cv"]

HELDOUT_FILE = "heldout.csv"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a cross-validation.

    Attributes:
        name: Its name in the report, the predictions file and the run folders.
        kind: A key of :data:`encore.train.runs.TRAINERS`.
        config_path: Its own YAML config, or None for the run's ``--config``.
    """

    name: str
    kind: str
    config_path: str | None = None


def parse_model_spec(text: str) -> ModelSpec:
    """``KIND``, ``KIND=CONFIG``, ``NAME:KIND`` or ``NAME:KIND=CONFIG`` as a :class:`ModelSpec`.

    Example:
        >>> parse_model_spec("big:cnn=configs/big.yaml")
        ModelSpec(name='big', kind='cnn', config_path='configs/big.yaml')

    Raises:
        ParameterError: an empty part, an unknown kind or a name unfit for a folder.
    """
    from encore.train.runs import get_trainer

    head, _, config = text.partition("=")
    name, _, kind = head.partition(":") if ":" in head else (head, "", head)
    name, kind, config = name.strip(), kind.strip(), config.strip()
    if not kind or ("=" in text and not config):
        raise ParameterError(f"--model {text!r} must look like KIND, KIND=CONFIG or NAME:KIND=CONFIG, e.g. cnn=configs/a.yaml")
    if not _NAME.match(name):
        raise ParameterError(f"--model {text!r}: the name {name!r} must be letters, digits, '-', '_' or '.'")
    get_trainer(kind)
    return ModelSpec(name=name, kind=kind, config_path=config or None)


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, else a :class:`ParameterError`."""
    if not re.match(DEVICE_PATTERN, device):
        raise ParameterError(f"--device {device!r} is not a device; use {DEVICE_HELP}")
    return device


@dataclass
class CVPlan:
    """What a cross-validation runs: the same folds for every model and seed.

    Attributes:
        models: The models, names unique.
        seeds: Training seeds (``train.seed`` and ``baseline.seed``); the folds do not move with them.
        n_folds: Number of folds.
        fold_seed: Seed of the dealing of artists into folds (and of the validation share).
        val_fraction: Share of each round's training songs held out as ``val`` for models
            that read a validation split; 0 = none.
        config_path: The config of models without their own.
        overrides: ``section.key=value`` overrides for every model.
        device: ``train.device`` for the models that train on one.
        n_boot: Bootstrap resamples of the report's intervals.
    """

    models: list[ModelSpec]
    seeds: list[int] = field(default_factory=lambda: [0])
    n_folds: int = 5
    fold_seed: int = 0
    val_fraction: float = 0.15
    config_path: str | None = None
    overrides: list[str] = field(default_factory=list)
    device: str | None = None
    n_boot: int = 1000

    def check(self) -> None:
        """Raises :class:`ParameterError` for duplicate names, no models or seeds, bad fractions."""
        names = [m.name for m in self.models]
        if not names:
            raise ParameterError("no model to cross-validate; pass --model, e.g. --model cnn --model random_forest")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ParameterError(
                f"two models are named {duplicates[0]!r}; name them apart, e.g. --model big:cnn=configs/big.yaml"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParameterError(f"--seeds {self.seeds} must list distinct seeds, e.g. 0,1,2")
        if isinstance(self.n_folds, bool) or self.n_folds < 2:
            raise ParameterError(f"--folds {self.n_folds} must be at least 2")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ParameterError(f"--val-fraction {self.val_fraction} must be in [0, 0.5); 0 = no validation songs")
        if self.device is not None:
            check_device(self.device)

    def config_for(self, spec: ModelSpec, seed: int | None = None) -> EncoreConfig:
        """The resolved config of one model, with the device and (when given) the seed set."""
        extra = list(self.overrides)
        if self.device is not None:
            extra.append(f"train.device={self.device}")
        if seed is not None:
            extra += [f"train.seed={seed}", f"baseline.seed={seed}"]
        if spec.kind == "blend":  # the members get them too
            from encore.train.blend import blend_overrides

            extra = blend_overrides(extra)
        path = spec.config_path or self.config_path
        return load_config(path, extra)


class CVProgress:
    """Callbacks of :func:`run_cv`; the CLI draws them as progress bars. Each does nothing here."""

    def decoding(self, sample_rate: int, total: int) -> Callable[[int], None] | None:
        """Songs are about to be decoded at ``sample_rate``; returns an ``advance(n)`` callback."""
        return None

    def unit_started(self, model: str, seed: int, fold: int, epochs: int | None) -> Callable[[dict], None] | None:
        """A unit starts training; returns a per-epoch callback."""
        return None

    def task(self, description: str, total: int) -> Callable[[int], None] | None:
        """A unit starts work that is not epochs (features, embeddings: ``total`` songs);
        returns an ``advance(n)`` callback (an :data:`encore.progress.ProgressHook`)."""
        return None

    def unit_done(self, model: str, seed: int, fold: int, seconds: float, *, skipped: bool) -> None:
        """A unit has its held-out predictions (``skipped``: it had them from an earlier run)."""


# --------------------------------------------------------------------------- folds


def assign_folds(manifest: Manifest, *, n_folds: int, seed: int = 0) -> pd.DataFrame:
    """Each song's fold: stratified by label, no artist in two folds.

    Returns:
        ``track_id, artist, label, group, fold`` per song, in the manifest's order;
        ``group`` is the artist group, ``(no artist) <track_id>`` for a song without one.

    Raises:
        ParameterError: fewer artist groups than folds.
    """
    frame = manifest.frame
    artists = frame["artist"].astype("str").str.strip().replace({"nan": "", "None": ""})
    no_artist = frame["artist"].isna() | (artists == "")
    group = np.where(no_artist, "(no artist) " + frame["track_id"].astype(str), artists.str.casefold())
    n_groups = len(set(group))
    if n_groups < n_folds:
        raise ParameterError(
            f"--folds {n_folds} needs at least {n_folds} artists, and the manifest's {len(frame)} songs are by "
            f"{n_groups}; lower --folds or add songs by more artists"
        )
    folds = kfold_by_artist(frame, n_folds=n_folds, artist_col="artist", label_col="label", seed=seed)
    return pd.DataFrame(
        {
            "track_id": frame["track_id"].astype(str),
            "artist": frame["artist"].where(~no_artist, None),
            "label": frame["label"] if "label" in frame else None,
            "group": group,
            "fold": folds.to_numpy(),
        }
    )


def fold_manifest(manifest: Manifest, folds: pd.DataFrame, fold: int, *, val_fraction: float, seed: int = 0) -> Manifest:
    """The manifest of one round: fold ``fold`` as ``test``, a validation share, the rest ``train``.

    The validation share (``val_fraction`` of the training songs, 0 for none) is dealt by
    artist and stratified by label like the folds themselves.
    """
    frame = manifest.frame.copy()
    test = (folds["fold"] == fold).to_numpy()
    split = np.where(test, "test", "train").astype(object)
    if val_fraction > 0:
        train = frame[~test]
        if folds.loc[~test, "group"].nunique() >= 2:
            inner = split_by_artist(
                train, artist_col="artist", label_col="label", val_fraction=val_fraction, test_fraction=0.0, seed=seed + fold
            )
            split[np.flatnonzero(~test)] = inner.to_numpy()
    frame["split"] = split
    info = {**manifest.info, "cv_fold": fold, "cv_val_fraction": val_fraction}
    return Manifest(
        frame=frame,
        label_names=list(manifest.label_names),
        tag_names=list(manifest.tag_names),
        regression_names=list(manifest.regression_names),
        info=info,
    )


# --------------------------------------------------------------------------- the plan on disk


def _plan_record(plan: CVPlan, manifest_path: Path, manifest: Manifest) -> dict[str, Any]:
    def config_of(spec: ModelSpec) -> dict[str, Any]:
        config = plan.config_for(spec)
        settings = config.model_dump(mode="json")
        settings["train"].pop("device", None)  # where it trains does not change what it trains
        if spec.kind == "blend":  # what its members' files say, as they read now
            from encore.train.blend import member_plans

            settings["blend"]["overrides"] = [o for o in settings["blend"]["overrides"] if not o.startswith("train.device=")]
            settings["blend_members"] = {}
            for member in member_plans(config):
                resolved = member.config.model_dump(mode="json")
                resolved["train"].pop("device", None)
                settings["blend_members"][member.member.name] = resolved
        return settings

    return {
        "manifest": {"path": str(manifest_path), "digest": manifest.digest()},
        "n_folds": plan.n_folds,
        "fold_seed": plan.fold_seed,
        "val_fraction": plan.val_fraction,
        "models": {
            m.name: {"kind": m.kind, "config_path": m.config_path or plan.config_path, "config": config_of(m)}
            for m in plan.models
        },
        "seeds": list(plan.seeds),
    }


def _reconcile(path: Path, record: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The plan to write: this one, merged with the folder's earlier one when they agree."""
    if not path.is_file():
        return record
    earlier = json.loads(path.read_text(encoding="utf-8"))
    for key, what in (
        ("manifest", "manifest (rebuilt by `encore labels` since?)"),
        ("n_folds", "--folds"),
        ("fold_seed", "--fold-seed"),
        ("val_fraction", "--val-fraction"),
    ):
        mine = record[key]["digest"] if key == "manifest" else record[key]
        theirs = earlier[key]["digest"] if key == "manifest" else earlier[key]
        if mine != theirs:
            raise ParameterError(
                f"{out_dir} was started with another {what}; pass another --name for a new cross-validation, "
                "or --restart to discard it"
            )
    for name, model in record["models"].items():
        old = earlier["models"].get(name)
        if old is not None and (old["kind"], old["config"]) != (model["kind"], model["config"]):
            raise ParameterError(
                f"{out_dir} already holds model {name!r} trained with other settings; name this one apart "
                f"(--model other:{model['kind']}=CONFIG), pass another --name, or --restart"
            )
    merged = dict(record)
    merged["models"] = {**earlier["models"], **record["models"]}
    merged["seeds"] = sorted(set(earlier["seeds"]) | set(record["seeds"]))
    return merged


def cv_dir(ws: Workspace, name: str) -> Path:
    """``WS/cv/NAME``."""
    if not _NAME.match(name):
        raise ParameterError(f"--name {name!r} must be letters, digits, '-', '_' or '.'")
    return ws.root / "cv" / name


# --------------------------------------------------------------------------- running


def _write_atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def heldout_frame(
    manifest: Manifest,
    test: pd.DataFrame,
    arrays: Mapping[str, np.ndarray],
    predictor: Any,
    *,
    seed: int,
    fold: int,
    seconds: float,
) -> pd.DataFrame:
    """One row per held-out song: its targets (``true:*``) and the model's predictions.

    Columns: ``seed, fold, track_id, artist, true:label, pred:label, prob:<class>...,
    true:<score>, pred:<score>, true:tag:<tag>, pred:tag:<tag>, train_seconds``; and where
    the model gives a calibrated novelty score, ``novelty`` (the distance), ``novel`` (beyond
    its threshold: on held-out songs of the catalogue's own kind, a false alarm) and
    ``novelty_percentile`` (the percentile of its reference songs the threshold sits at).
    """
    out = pd.DataFrame(
        {"seed": seed, "fold": fold, "track_id": test["track_id"].astype(str).to_numpy(), "artist": test["artist"].to_numpy()}
    )
    if "class_probs" in arrays and manifest.label_names:
        names = list(predictor.label_names)
        if sorted(names) != sorted(manifest.label_names):
            raise ParameterError(f"a fold's model predicts classes {names}, the manifest has {manifest.label_names}")
        probs = arrays["class_probs"][:, [names.index(n) for n in manifest.label_names]]
        out["true:label"] = test["label"].to_numpy() if "label" in test else None
        out["pred:label"] = np.asarray(manifest.label_names, dtype=object)[probs.argmax(1)]
        for j, name in enumerate(manifest.label_names):
            out[f"prob:{name}"] = probs[:, j]
    if "scores" in arrays:
        for j, name in enumerate(predictor.regression_names):
            if name in manifest.regression_names:
                out[f"true:{name}"] = pd.to_numeric(test[name], errors="coerce").to_numpy()
                out[f"pred:{name}"] = arrays["scores"][:, j]
    if "tag_probs" in arrays and list(predictor.tag_names) == list(manifest.tag_names):
        for j, name in enumerate(manifest.tag_names):
            out[f"true:tag:{name}"] = pd.to_numeric(test[TAG_PREFIX + name], errors="coerce").to_numpy()
            out[f"pred:tag:{name}"] = arrays["tag_probs"][:, j]
    calibration = getattr(predictor, "novelty_calibration", None)
    if "novelty_distance" in arrays and calibration is not None and calibration.usable and calibration.threshold is not None:
        distance = np.asarray(arrays["novelty_distance"], dtype=np.float64).reshape(len(out))
        out["novelty"] = distance
        out["novel"] = distance > calibration.threshold
        out["novelty_percentile"] = calibration.threshold_percentile
    out["train_seconds"] = seconds
    return out


def _decode_all(ws: Workspace, manifest: Manifest, rates: Sequence[int], progress: CVProgress) -> tuple[dict, list]:
    from encore.train.runs import decode_manifest

    decoded: dict[int, dict[str, np.ndarray | None]] = {}
    failures: list = []
    for rate in sorted(set(rates)):
        advance = progress.decoding(rate, len(manifest.frame))
        decoded[rate], failed = decode_manifest(manifest, ws, sample_rate=rate, callback=advance)
        failures += [f for f in failed if f.path not in {g.path for g in failures}]
        for failure in failed:
            logger.warning("song skipped: %s (%s)", failure.path, failure.reason)
    return decoded, failures


def _predict(
    predictor: Any, track_ids: Sequence[str], decoded: Mapping[int, Mapping], cache: Any, progress: CVProgress
) -> dict[str, np.ndarray]:
    """Held-out predictions of the songs ``track_ids`` (``decoded``: the songs by rate).

    A classical model's features come through the workspace cache, and a song-level
    probe's mean embeddings through the embedding cache, as their training songs' did (a
    song tested in one round trained in the others); a blend's members each predict so,
    at their own rates."""
    from encore.inference import BaselinePredictor, BlendPredictor
    from encore.train.transfer import cached_probe_arrays, default_embedding_cache, is_song_probe

    if isinstance(predictor, BlendPredictor):
        return predictor.blend([_predict(p, track_ids, decoded, cache, progress) for _, p, _ in predictor.members])
    songs = [decoded[predictor.sample_rate][t] for t in track_ids]
    if isinstance(predictor, BaselinePredictor):
        advance = progress.task(f"features of {len(songs)} held-out songs", len(songs))
        return predictor.predict_features(*predictor.features(songs, cache=cache, callback=advance))
    if is_song_probe(predictor):
        advance = progress.task(f"embed {len(songs)} held-out songs", len(songs))
        probe = cached_probe_arrays(predictor, songs, cache_dir=default_embedding_cache(), callback=advance)
        if probe is not None:
            return probe
    return predictor.predict_arrays(songs)


def _run_unit(
    ws: Workspace,
    spec: ModelSpec,
    config: EncoreConfig,
    manifest_path: Path,
    manifest: Manifest,
    decoded: Mapping[int, Mapping],
    run_dir: Path,
    *,
    seed: int,
    fold: int,
    progress: CVProgress,
) -> None:
    from encore.features.cache import FeatureCache
    from encore.inference import load_predictor
    from encore.train.runs import TrainContext, get_trainer

    trainer = get_trainer(spec.kind)
    if run_dir.exists() and not trainer.resumable:
        shutil.rmtree(run_dir)
    epoch_callback = progress.unit_started(spec.name, seed, fold, trainer.epochs(config))
    started = time.perf_counter()
    ctx = TrainContext(
        manifest_path=str(manifest_path),
        cache=FeatureCache(ws.cache_dir),
        epoch_callback=epoch_callback,
        songs_at=decoded.__getitem__,
        progress=progress.task,
    )
    rates = trainer.rates(config)
    trainer.fit(manifest, decoded[trainer.sample_rate(config)], config, run_dir, ctx)
    seconds = time.perf_counter() - started
    predictor = load_predictor(run_dir)
    test = manifest.subset("test")
    test = test[[all(decoded[r].get(t) is not None for r in rates) for t in test["track_id"]]].reset_index(drop=True)
    arrays = _predict(predictor, list(test["track_id"]), decoded, ctx.cache, progress) if len(test) else {}
    frame = heldout_frame(manifest, test, arrays, predictor, seed=seed, fold=fold, seconds=seconds)
    _write_atomic_csv(frame, run_dir / HELDOUT_FILE)
    progress.unit_done(spec.name, seed, fold, seconds, skipped=False)


def collect_predictions(out_dir: Path, spec: ModelSpec, seeds: Sequence[int], n_folds: int) -> pd.DataFrame | None:
    """The model's held-out rows of the given seeds, from its finished units; written to
    ``predictions/<model>.csv``. None when no unit has finished."""
    frames = []
    for seed in seeds:
        for fold in range(n_folds):
            path = out_dir / "runs" / spec.name / f"seed{seed}-fold{fold}" / HELDOUT_FILE
            if path.is_file():
                frames.append(pd.read_csv(path, dtype={"track_id": str, "artist": str, "true:label": str, "pred:label": str}))
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True)
    (out_dir / "predictions").mkdir(exist_ok=True)
    _write_atomic_csv(frame, out_dir / "predictions" / f"{spec.name}.csv")
    return frame


def run_cv(
    ws: Workspace,
    plan: CVPlan,
    *,
    name: str = "cv",
    manifest_path: str | os.PathLike | None = None,
    restart: bool = False,
    progress: CVProgress | None = None,
) -> dict[str, Any]:
    """Cross-validate the plan's models on a workspace manifest and write the report.

    Args:
        ws: The workspace.
        plan: Models, seeds, folds.
        name: The folder under ``WS/cv/``; rerunning the same name resumes it.
        manifest_path: Default ``manifests/default.csv``.
        restart: Discard the folder's earlier results first.
        progress: Progress callbacks.

    Returns:
        The report (as in ``report.json``), with ``report_html`` and ``predictions`` paths added.

    Raises:
        ParameterError: a bad plan, too few artists for the folds, or a folder started
            with other folds or other settings for a model of the same name.
    """
    from encore.evaluate.cv_report import write_cv_report
    from encore.evaluate.cv_summary import summarise_cv
    from encore.train.runs import get_trainer

    plan.check()
    progress = progress or CVProgress()
    manifest_path = Path(manifest_path) if manifest_path else ws.manifest_path()
    manifest = Manifest.read(manifest_path)
    out_dir = cv_dir(ws, name)
    if restart and out_dir.exists():
        shutil.rmtree(out_dir)
    configs = {m.name: plan.config_for(m) for m in plan.models}  # fails early on a bad config
    record = _reconcile(out_dir / "plan.json", _plan_record(plan, manifest_path, manifest), out_dir)
    folds = assign_folds(manifest, n_folds=plan.n_folds, seed=plan.fold_seed)
    (out_dir / "folds").mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    _write_atomic_csv(folds, out_dir / "folds.csv")
    n_alone = int(folds["group"].str.startswith("(no artist) ").sum())
    if n_alone:
        logger.warning("%d of %d songs have no artist; each is its own group in the folds", n_alone, len(folds))

    fold_paths: dict[tuple[int, bool], Path] = {}
    for fold in range(plan.n_folds):
        for with_val in {plan.val_fraction > 0, False}:
            path = out_dir / "folds" / f"fold{fold}{'' if with_val else '-noval'}.csv"
            fold_manifest(manifest, folds, fold, val_fraction=plan.val_fraction if with_val else 0.0, seed=plan.fold_seed).write(
                path
            )
            fold_paths[fold, with_val] = path

    pending = [
        (m, s, k)
        for m in plan.models
        for s in plan.seeds
        for k in range(plan.n_folds)
        if not (out_dir / "runs" / m.name / f"seed{s}-fold{k}" / HELDOUT_FILE).is_file()
    ]
    for m, s, k in [(m, s, k) for m in plan.models for s in plan.seeds for k in range(plan.n_folds)]:
        if (m, s, k) not in pending:
            progress.unit_done(m.name, s, k, 0.0, skipped=True)
    failures: list = []
    if pending:
        rates = [r for m in {m.name: m for m, _, _ in pending}.values() for r in get_trainer(m.kind).rates(configs[m.name])]
        decoded, failures = _decode_all(ws, manifest, rates, progress)
        for spec, seed, fold in pending:
            trainer = get_trainer(spec.kind)
            config = plan.config_for(spec, seed)
            path = fold_paths[fold, trainer.uses_validation(config) and plan.val_fraction > 0]
            run_dir = out_dir / "runs" / spec.name / f"seed{seed}-fold{fold}"
            logger.info("%s seed %d fold %d: training in %s", spec.name, seed, fold, run_dir)
            _run_unit(
                ws,
                spec,
                config,
                path,
                Manifest.read(path),
                decoded,
                run_dir,
                seed=seed,
                fold=fold,
                progress=progress,
            )

    predictions = {m.name: collect_predictions(out_dir, m, plan.seeds, plan.n_folds) for m in plan.models}
    report = summarise_cv(
        manifest,
        folds,
        {k: v for k, v in predictions.items() if v is not None},
        kinds={m.name: m.kind for m in plan.models},
        n_boot=plan.n_boot,
    )
    report["plan"] = {
        **{k: record[k] for k in ("manifest", "n_folds", "fold_seed", "val_fraction")},
        "seeds": list(plan.seeds),
        "models": {
            m.name: {
                "kind": m.kind,
                "config_path": m.config_path or plan.config_path,
                "uses_validation": get_trainer(m.kind).uses_validation(plan.config_for(m)) and plan.val_fraction > 0,
            }
            for m in plan.models
        },
        "overrides": list(plan.overrides),
        "device": plan.device,
    }
    report["decode_failures"] = [{"path": f.path, "reason": f.reason} for f in failures]
    report["predictions"] = {m: str(out_dir / "predictions" / f"{m}.csv") for m, v in predictions.items() if v is not None}
    report["report_html"] = str(write_cv_report(out_dir, report, title=f"encore cross-validation: {name}"))
    return report
