"""``encore demo``: the whole journey on a generated catalogue, through the real code paths.

Generated songs and feedback are written as files and then go through exactly what a
user's data goes through: ``import_tracks`` / ``import_feedback`` into the store,
``build_manifest`` for targets and splits, ``train_run`` for the CNN and the random
forest, ``evaluate_run`` and ``write_report``, and ``Predictor.from_checkpoint`` for a
song nobody has heard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from encore.config import EncoreConfig, load_config
from encore.data.manifest import Manifest
from encore.targets.build import build_manifest
from encore.demo.synth import STYLES, TAG_SYNONYMS, generate_catalogue, generate_song_file, simulate_feedback
from encore.evaluate.report import write_report
from encore.evaluate.runs import compare_results, evaluate_run
from encore.feedback.importers import ImportReport, import_feedback, import_tracks
from encore.inference import Predictor
from encore.train.runs import decode_manifest, train_run
from encore.workspace import Workspace

logger = logging.getLogger(__name__)

__all__ = ["DemoSize", "DemoSummary", "demo_config", "run_demo"]


@dataclass(frozen=True)
class DemoSize:
    """How big the generated catalogue is."""

    artists_per_style: int = 6
    songs_per_artist: int = 4
    duration: float = 12.0
    listeners: int = 80


@dataclass
class DemoSummary:
    workspace: Path
    report: Path
    songs_report: ImportReport
    events_report: ImportReport
    manifest: dict[str, Any]
    results: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    new_song: dict[str, Any]
    new_song_style: str
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(overrides: list[str] | None = None) -> EncoreConfig:
    """The packaged demo configuration with optional ``section.key=value`` overrides."""
    with resources.as_file(resources.files("encore") / "configs" / "demo.yaml") as path:
        return load_config(path, overrides)


def run_demo(
    out_dir: str | Path,
    *,
    size: DemoSize = DemoSize(),
    overrides: list[str] | None = None,
    seed: int = 0,
    on_step: Callable[[str], None] = lambda message: None,
    progress: Callable[[str, int | None], Any] | None = None,
) -> DemoSummary:
    """Generate a catalogue and feedback, then run the whole journey in workspace ``out_dir``.

    Args:
        out_dir: The workspace folder (created; songs go to ``out_dir/songs``).
        size: Catalogue size.
        overrides: Config overrides, e.g. ``["train.epochs=3"]``.
        seed: Seed for the generated data.
        on_step: Told what is happening, one line per step.
        progress: ``progress(description, total)`` returning a context manager that yields
            an ``advance(n)`` callback (the CLI's progress bar); None for no bars.
    """
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    ws = Workspace.init(out_dir)
    config = demo_config(overrides)

    def bar(description: str, total: int | None):
        if progress is None:
            from contextlib import nullcontext

            return nullcontext(lambda n=1: None)
        return progress(description, total)

    t = time.perf_counter()
    songs_dir = ws.root / "songs"
    n_songs = len(STYLES) * size.artists_per_style * size.songs_per_artist
    on_step(f"generating {n_songs} songs in {len(STYLES)} styles by {len(STYLES) * size.artists_per_style} artists")
    songs = generate_catalogue(
        songs_dir,
        n_artists_per_style=size.artists_per_style,
        songs_per_artist=size.songs_per_artist,
        duration=size.duration,
        sample_rate=config.features.sample_rate,
        seed=seed,
    )
    feedback = simulate_feedback(songs, n_listeners=size.listeners, seed=seed, n_bad_rows=3)
    feedback_path = ws.root / "feedback.csv"
    feedback.to_csv(feedback_path, index=False)
    synonyms_path = ws.root / "tag_synonyms.yaml"
    synonyms_path.write_text(yaml.safe_dump(dict(TAG_SYNONYMS)), encoding="utf-8")
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    on_step(f"importing songs and {len(feedback)} feedback rows into {ws.store_url}")
    with ws.open_store() as store:
        songs_report = import_tracks(store, songs_dir / "catalogue.csv")
        events_report = import_feedback(store, feedback_path)
        on_step("turning feedback into targets (style votes, tags, appeal) and splitting by artist")
        config = config.model_copy(update={"labels": config.labels.model_copy(update={"synonyms_file": str(synonyms_path)})})
        manifest = build_manifest(store, config.labels)
    manifest_path = manifest.write(ws.manifest_path())
    timings["import_and_labels"] = time.perf_counter() - t

    t = time.perf_counter()
    with bar("decode", len(manifest.frame)) as advance:
        waveforms, _ = decode_manifest(manifest, ws, sample_rate=config.features.sample_rate, callback=advance)
    on_step(f"training the CNN ({config.model.name}, {config.train.epochs} epochs at most)")
    with bar("train CNN", config.train.epochs) as advance:
        cnn_dir = train_run(
            ws,
            config,
            kind="cnn",
            manifest_path=manifest_path,
            name="demo-cnn",
            waveforms=waveforms,
            epoch_callback=lambda row: advance(1),
        )
    timings["train_cnn"] = time.perf_counter() - t
    t = time.perf_counter()
    on_step("training the random-forest baseline on handcrafted features")
    rf_dir = train_run(ws, config, kind="random_forest", manifest_path=manifest_path, name="demo-rf", waveforms=waveforms)
    timings["train_baseline"] = time.perf_counter() - t

    t = time.perf_counter()
    on_step("evaluating both on held-out artists' songs")
    results = [evaluate_run(d, split="test", waveforms=waveforms) for d in (cnn_dir, rf_dir)]
    comparisons = compare_results(results)
    report = write_report(
        ws.reports_dir / "demo",
        results,
        title="encore demo: CNN vs random forest on held-out artists",
        data_summary=Manifest.read(manifest_path).summary(),
        comparisons=comparisons,
    )
    timings["evaluate"] = time.perf_counter() - t

    new_style = STYLES[seed % len(STYLES)]
    new_path = generate_song_file(
        ws.root / "new-song.mp3", new_style, seed=seed + 10_000, duration=size.duration, sample_rate=config.features.sample_rate
    )
    on_step(f"predicting a song nobody has heard: {new_path.name}")
    new_song = Predictor.from_checkpoint(cnn_dir).predict_file(new_path)
    timings["total"] = time.perf_counter() - t_start
    return DemoSummary(
        workspace=ws.root,
        report=report,
        songs_report=songs_report,
        events_report=events_report,
        manifest=manifest.summary(),
        results=results,
        comparisons=comparisons,
        new_song=new_song,
        new_song_style=new_style,
        seconds=timings,
    )
