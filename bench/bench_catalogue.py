"""Catalogue prediction against its bound, decoding: songs per second, in one run.

Usage:
    python bench/bench_catalogue.py [--songs 48] [--seconds 30] [--workers 1,2] [--device cpu]
                                    [--model small_cnn] [--config configs/default.yaml]

Writes ``--songs`` MP3 files of music-like audio (made here), saves an untrained
``--model`` run with the config's front end (speed does not depend on the weights), and
measures, each in songs per second:

- the bound: decoding alone (MP3 -> mono float32 at the model's rate, in windows) in N
  worker processes, as ``encore predict --jobs N`` decodes;
- end to end with N decoding workers and the model in the calling process on
  ``--device`` (chunks of several songs share batches): ratio against the bound;
- end to end decoding in the calling process, file after file (``--jobs 0``): the
  reference before decoding workers, and the default on a CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from encore.config import load_config
from encore.data.manifest import Manifest
from encore.inference import Predictor
from encore.models.card import TrainingRecord
from encore.inference.batch import predict_files
from encore.inference.parallel import decoded_pieces
from encore.models.checkpoint import save_checkpoint
from encore.models.classifier import EncoreModel
from encore.train import loop

REPO = Path(__file__).resolve().parents[1]


def write_songs(folder: Path, n: int, seconds: float, sample_rate: int = 44100) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    paths = []
    for i in range(n):
        beat = 60.0 / rng.uniform(80, 160)
        wave = sum(np.sin(2 * np.pi * rng.uniform(80, 2000) * t) for _ in range(3)) * np.exp(-(t % beat) * 4)
        stereo = np.stack([wave, np.roll(wave, 100)], axis=1) * 0.2 + 0.01 * rng.standard_normal((t.size, 2))
        path = folder / f"song{i:03d}.mp3"
        sf.write(path, stereo.astype(np.float32), sample_rate, format="MP3")
        paths.append(path)
    return paths


def save_run(folder: Path, config_path: Path, model: str) -> Path:
    import pandas as pd

    config = load_config(config_path, {"model.name": model})
    manifest = Manifest(
        frame=pd.DataFrame({"track_id": ["x"], "path": ["x"], "artist": ["a"], "split": ["train"], "label": ["a"]}),
        label_names=["a", "b", "c"],
        tag_names=[],
        regression_names=[],
    )
    network = loop._network(config, manifest)
    torch.manual_seed(0)
    card = loop._build_card(config, manifest, network, (np.zeros(0), np.ones(0)), None)
    card.training = TrainingRecord(precision="float32")
    save_checkpoint(folder / "checkpoint.pt", EncoreModel(**network.model_kwargs()), card)
    return folder


def rate(paths: list[Path], work) -> float:
    start = time.perf_counter()
    work()
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_songs(Path(tmp), args.songs, args.seconds)
        run = save_run(Path(tmp) / "run", args.config, args.model)
        predictor = Predictor.from_checkpoint(run, device=args.device)
        predictor.predict_waveform(np.zeros(predictor.sample_rate * 5, np.float32))  # warm-up
        print(
            f"{args.songs} MP3 songs of {args.seconds:.0f} s, {args.model} on {predictor.device} "
            f"(batch {predictor.batch_size}), {torch.get_num_threads()} torch threads"
        )
        serial = rate(paths, lambda: list(predict_files(predictor, paths)))
        print(f"{'end to end, decoding in-process (reference)':48s} {serial:8.1f} songs/s  1.00")
        for workers in (int(w) for w in args.workers.split(",")):
            bound = rate(paths, lambda: list(decoded_pieces(paths, predictor, workers=workers, decode_only=True)))
            both = rate(paths, lambda: list(predict_files(predictor, paths, workers=workers)))
            print(f"{f'decode only, {workers} workers (the bound)':48s} {bound:8.1f} songs/s  {bound / serial:4.2f}")
            print(
                f"{f'end to end, {workers} workers':48s} {both:8.1f} songs/s  {both / serial:4.2f}"
                f"  ({both / bound:.2f} of the bound)"
            )


if __name__ == "__main__":
    main()
