"""``encore train``: train a CNN or the random-forest baseline on a manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import (
    ConfigOption,
    SetOption,
    WorkspaceOption,
    handle_errors,
    out,
    progress_bar,
    progress_tasks,
    report_skipped,
    step,
)
from encore.exceptions import ParameterError
from encore.workspace import Workspace

MODEL_KINDS = ("cnn", "random_forest", "gradient_boosting", "svm", "ensemble", "blend")
"""The rows of :data:`encore.train.runs.TRAINERS`, named here so that ``--help`` imports no numpy (a test checks they agree)."""


@handle_errors
def train_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    model: Annotated[
        str,
        typer.Option(
            help="cnn, random_forest, gradient_boosting, svm, ensemble (a soft vote of baseline.ensemble.members) or "
            "blend (blend.members, each trained from its own config, their predictions averaged: configs/emotify_blend.yaml)."
        ),
    ] = "cnn",
    manifest: Annotated[Path | None, typer.Option(help="Manifest CSV (default manifests/default.csv).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name under runs/ (default: the model kind).")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Resume this run (folder or name under runs/) from its last checkpoint.")
    ] = None,
    init_from: Annotated[
        list[str] | None,
        typer.Option(
            metavar="RUN",
            help="Transfer: start from this CNN run's (or pretrained:NAME's) backbone with new heads (train.init_from). "
            "Repeat it to put several published models that read the same input side by side "
            "(--init-from pretrained:musicnn-msd --init-from pretrained:musicnn-mtt).",
        ),
    ] = None,
    freeze_backbone: Annotated[
        bool,
        typer.Option(
            "--freeze-backbone",
            help="With --init-from: keep the backbone and fit the heads on the songs' mean embeddings (the song-level probe).",
        ),
    ] = False,
    tune_top: Annotated[
        bool,
        typer.Option(
            "--tune-top",
            help="With --init-from pretrained:NAME: the probe, then each tagger's top (musicnn's dense back end) "
            "fine-tuned with the class head on cached chunks of the frozen layers below (train.tune_top; sets "
            "--freeze-backbone; train.epochs, train.lr and train.init_lr_scale apply).",
        ),
    ] = False,
    select_features: Annotated[
        bool,
        typer.Option(
            "--select-features",
            help="random_forest / gradient_boosting / svm / ensemble: keep the most important features, how many chosen "
            "by cross-validation on the training songs (baseline.selection.enabled).",
        ),
    ] = False,
    segments: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            metavar="SECONDS",
            help="random_forest / gradient_boosting / svm / ensemble: train on segments of this many seconds, each with "
            "its song's targets, and predict a song as the mean of its segments (baseline.segment_seconds; at most "
            "baseline.max_segments a song).",
        ),
    ] = None,
    nproc: Annotated[
        int, typer.Option(min=1, help="Data-parallel CNN training on this many processes (runs torchrun for you).")
    ] = 1,
) -> None:
    """Train a model; the run folder gets checkpoint.pt (with its model card), metrics.csv and config.yaml.

    For several machines, start `torchrun --nnodes N --nproc-per-node P --rdzv-backend c10d
    --rdzv-endpoint HOST:PORT -m encore.cli.main train --resume RUN ...` on each node.
    """
    if model not in MODEL_KINDS:
        raise ParameterError(f"--model {model!r} is unknown; use {' or '.join(MODEL_KINDS)}")
    if nproc > 1:
        from encore.config import load_config
        from encore.train.distributed import check_nproc

        check_nproc(nproc, load_config(config, set or []).train.device)  # before any process starts
        _relaunch_with_torchrun(nproc, name, resume)
        return
    from encore.config import load_config
    from encore.data.manifest import Manifest
    from encore.train.runs import decode_manifest, get_trainer, train_run

    ws = Workspace.open(workspace)
    if resume is not None and not resume.is_dir() and "LOCAL_RANK" not in os.environ:
        resume = ws.resolve_run(resume)  # a name under runs/; a typo is not a new folder (torchrun ranks may create it)
    extra = []
    if init_from:  # JSON is YAML: a path with a colon or a comma stays one value
        extra.append(f"train.init_from={json.dumps(init_from[0] if len(init_from) == 1 else init_from)}")
    if freeze_backbone or tune_top:
        extra.append("train.freeze_backbone=true")
    if tune_top:
        extra.append("train.tune_top=true")
    if select_features:
        extra.append("baseline.selection.enabled=true")
    if segments is not None:
        extra.append(f"baseline.segment_seconds={segments}")
    overrides = [*(set or []), *extra]
    if model == "blend":  # --set reaches the members too
        from encore.train.blend import blend_overrides

        overrides = blend_overrides(overrides)
    cfg = load_config(config, overrides)
    manifest_path = manifest or ws.manifest_path()
    songs = Manifest.read(manifest_path)
    trainer = get_trainer(model)
    decoded: dict[int, dict] = {}
    for rate in trainer.rates(cfg):
        step(f"decoding {len(songs.frame)} songs at {rate} Hz")
        with progress_bar("decode", len(songs.frame)) as advance:
            decoded[rate], failures = decode_manifest(songs, ws, sample_rate=rate, callback=advance)
        for failure in failures:
            report_skipped(failure.path, failure.reason)
    step(f"training {model}")
    with progress_tasks() as start:
        advance = start(f"train {model}", trainer.epochs(cfg))
        run_dir = train_run(
            ws,
            cfg,
            kind=model,
            manifest_path=manifest_path,
            name=name,
            run_dir=resume,
            waveforms=decoded[trainer.sample_rate(cfg)],
            songs_at=decoded.__getitem__,
            epoch_callback=lambda row: advance(1),
            progress=start,
        )
    out.print(f"run {run_dir}", highlight=False)
    print_validation(Path(run_dir))
    out.print(f"next: encore evaluate {Path(run_dir).name} -w {ws.root} (its scores on the test songs)", highlight=False)


VALIDATION_NAMES = {
    "val_accuracy": "accuracy",
    "val_macro_f1": "macro-F1",
    "val_appeal_spearman": "appeal Spearman",
    "val_tags_spearman": "tags' mean Spearman",
}
"""The validation metrics a network's card keeps, as the line after training names them."""


def print_validation(run_dir: Path) -> None:
    """A network's scores on the validation songs, from its card; or why a model has none."""
    if (run_dir / "checkpoint.pt").is_file():
        from encore.models.checkpoint import load_checkpoint

        card = load_checkpoint(run_dir / "checkpoint.pt")["model_card"]
        metrics = (card.metrics or {}).get("validation") or {}
        parts = [f"{label} {metrics[key]:.3f}" for key, label in VALIDATION_NAMES.items() if key in metrics]
        if parts:
            out.print("validation songs: " + ", ".join(parts), highlight=False)
        else:
            out.print("no validation score: the manifest has no labelled validation songs", highlight=False)
        return
    card_file = next((run_dir / name for name in ("model_card.json", "blend_card.json") if (run_dir / name).is_file()), None)
    if card_file is None:
        return
    card = json.loads(card_file.read_text(encoding="utf-8"))
    if "val" in (card.get("trained_on") or {}).get("splits", []):
        out.print("no validation score: it trained on the validation songs too (it does not stop early)", highlight=False)
    elif card.get("trained_on_validation"):
        out.print("no validation score: a member trained on the validation songs too", highlight=False)


def _relaunch_with_torchrun(nproc: int, name: str | None, resume: Path | None) -> None:
    """Rerun this very command under torchrun with ``nproc`` processes on this machine.

    Every rank must write into the same run folder, so the folder is fixed here (as
    ``--resume``) before the processes start.
    """
    import subprocess
    import sys

    from encore.train.distributed import torchrun_command

    argv = sys.argv[1:]
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        cleaned.append(arg)
    if resume is None:
        ws = Workspace.open(_option_value(argv, ("--workspace", "-w")))
        run_dir = ws.new_run_dir(name or "cnn")
        cleaned += ["--resume", str(run_dir)]
    step(f"torchrun: {nproc} processes")
    code = subprocess.call(torchrun_command(nproc, cleaned))
    if code:
        raise typer.Exit(code)


def _option_value(argv: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        for flag in names:
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None
