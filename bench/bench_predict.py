"""End-to-end song prediction (30-s MP3 file -> JSON) per backend, against plain eager float32.

Usage: python bench/bench_predict.py [--data ../shared/data/emotify] [--songs 24] [--quick] [--run RUN]

Writes 30-s MP3 excerpts of Emotify songs (mono, 22,050 Hz, as the set ships) to a temp
folder, then, in one process on one thread (``torch.set_num_threads(1)``: numbers are
per core), times the whole path of ``Predictor.predict_file`` plus ``json.dumps`` for:

- the reference: ``backend="eager"`` (the model as trained, float32) with all of a
  song's chunks in one batch;
- ``torch`` (the shipped default: BatchNorm folded, channels-last, inference mode,
  4-chunk batches, and bfloat16 autocast for a model trained under it, as the card of
  every model ``encore train`` makes on a CPU with bfloat16 says), the same in float32,
  ``torch`` with 10-chunk batches, and ``onnx`` (ONNX Runtime, float32).

Rounds are interleaved and the best round counts, so a busy machine hurts every variant
alike. The model is the default config's (small_cnn, 16 kHz, 64 mels, 3-s chunks) with
Emotify's heads (4 classes, 9 tags, appeal) and random weights, or a trained ``--run``.
Also prints the largest probability difference to the reference.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from encore.audio import load_audio
from encore.config import load_config
from encore.inference import Predictor
from encore.models.card import ChunkSpec, ModelCard, NetworkSpec, RegressionStats, TrainingRecord
from encore.inference.backends import bf16_supported
from encore.models.checkpoint import load_model, save_checkpoint
from encore.models.classifier import EncoreModel

REPO = Path(__file__).resolve().parents[1]


def default_run(folder: Path) -> Path:
    """A checkpoint of the default model with Emotify's heads (weights do not change speed)."""
    config = load_config(None, {})
    kwargs = {
        "frontend": config.features.model_dump(),
        "backbone": config.model.name,
        "backbone_kwargs": dict(config.model.kwargs),
        "label_names": ["classical", "electronic", "pop", "rock"],
        "tag_names": [
            "amazement",
            "solemnity",
            "tenderness",
            "nostalgia",
            "calmness",
            "power",
            "joyful_activation",
            "tension",
            "sadness",
        ],
        "regression_names": ["appeal"],
        "dropout": config.model.dropout,
    }
    # as `encore train` records it on this machine: trained (and validated) under bfloat16 autocast where supported
    precision = "bfloat16" if bf16_supported() else "float32"
    card = ModelCard(
        network=NetworkSpec(**kwargs),
        chunk=ChunkSpec(seconds=config.train.chunk_seconds),
        aggregate=config.train.aggregate,
        regression_stats=RegressionStats(mean=[0.0], std=[1.0]),
        training=TrainingRecord(precision=precision),
    )
    torch.manual_seed(0)
    save_checkpoint(folder / "checkpoint.pt", EncoreModel(**kwargs).eval(), card)
    return folder


def make_excerpts(data: Path, n_songs: int, seconds: float, folder: Path) -> list[Path]:
    sources = sorted(Path(data, "audio").glob("*/*.mp3"))
    if not sources:
        raise SystemExit(f"no MP3s under {data}/audio; pass --data")
    picks = [sources[i] for i in np.linspace(0, len(sources) - 1, n_songs).astype(int)]
    paths = []
    for i, source in enumerate(picks):
        waveform = load_audio(source, sample_rate=22050, duration=seconds)
        path = folder / f"excerpt{i:03d}.mp3"
        sf.write(path, waveform, 22050, format="MP3")
        paths.append(path)
    return paths


def time_variant(predictor: Predictor, files: list[Path]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    rows = []
    for path in files:
        row = predictor.predict_file(path)
        json.dumps(row)
        rows.append(row)
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify", help="Emotify folder")
    parser.add_argument("--songs", type=int, default=24, help="30-s excerpts to predict per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    parser.add_argument("--quick", action="store_true", help="6 songs, 2 rounds")
    parser.add_argument("--run", type=Path, default=None, help="a trained run instead of the random default model")
    args = parser.parse_args()
    if args.quick:
        args.songs, args.rounds = 6, 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = make_excerpts(args.data, args.songs, 30.0, tmp)
        run = args.run or default_run(tmp / "run")
        model, card = load_model(run)
        variants = {
            "eager, all chunks in one batch (reference)": Predictor(model, card, backend="eager", batch_size=10_000),
            "torch default (fused, channels-last, batch 4)": Predictor.from_checkpoint(run),
            "torch fused float32, batch 4": Predictor(
                model, card.model_copy(update={"training": TrainingRecord(precision="float32")})
            ),
            "torch fused, batch 10": Predictor.from_checkpoint(run, batch_size=10),
            "onnx runtime, batch 4": Predictor.from_checkpoint(run, backend="onnx"),
        }
        best = {name: float("inf") for name in variants}
        rows = {}
        for predictor in variants.values():
            predictor.predict_file(files[0])  # warm-up
        for _ in range(args.rounds):
            for name, predictor in variants.items():
                seconds, rows[name] = time_variant(predictor, files)
                best[name] = min(best[name], seconds)
    reference_name = next(iter(variants))
    reference = best[reference_name]
    print(
        f"{args.songs} x 30-s Emotify MP3 excerpts -> JSON, 1 thread, best of {args.rounds} rounds, "
        f"model {card.model_name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters)"
    )
    for name, seconds in best.items():
        diff = max(abs(a["probs"][k] - b["probs"][k]) for a, b in zip(rows[name], rows[reference_name]) for k in a["probs"])
        print(
            f"{name:48s} {seconds / args.songs * 1000:7.1f} ms/song  {args.songs / seconds:6.1f} songs/s/core  "
            f"{reference / seconds:5.2f}x  max |dprob| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
