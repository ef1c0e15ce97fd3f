"""Training and prediction on a GPU: a real run's throughput against batches already on the GPU.

Usage:
    python bench/bench_gpu.py [--model short_chunk_cnn] [--batch-size 256] [--steps 40]
                              [--songs 64] [--compile] [--device cuda] [--out FILE.json]

The model, front end and heads are configs/emotify.yaml's (22.05 kHz, 96 mel bands, class +
9 tag + score heads) with ``--model`` as the backbone and its own chunk length. Rows, each
in samples per second and as a ratio against the reference in the same process:

- reference: synthetic batches already on the GPU (random waveforms, random targets),
  one optimiser step each under bfloat16 autocast, channels-last, fused AdamW: what the
  GPU can do with this model when nothing else is in the way;
- synthetic float32 (the same without autocast), and with ``--compile`` torch.compile;
- ``fit()`` on decoded songs (synthetic music-like audio made here, one minute each), with
  the songs cropped on the GPU (:mod:`encore.train.feed`): the real loop, mixup, gain and
  noise included; the first epoch (cuDNN autotuning, compilation) is left out;
- ``fit()`` host-fed, as before ``encore.train.feed``: crops cut and augmented on the
  host, then copied to the GPU each step;
- prediction: songs per second of 30-s songs through ``Predictor`` on the GPU against
  the CPU, and the largest difference in class probability between the two.

TFLOP/s come from PyTorch's FLOP counter on one forward and backward pass, against the
H200's dense bfloat16 peak (989 TFLOP/s on paper; about 790 measured here in matrix
products, see the device notes).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

import encore.train.loop as loop
from encore.config import load_config
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.inference import Predictor
from encore.models.classifier import EncoreModel
from encore.models.registry import model_entry
from encore.train.objectives import compute_losses

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["a", "b", "c", "d"]
TAGS = [f"t{i}" for i in range(9)]
PEAK_TFLOPS = 989.0


def make_songs(n: int, sample_rate: int, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Music-like songs: a chord of decaying notes on a beat, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    songs = []
    for _ in range(n):
        beat = 60.0 / rng.uniform(80, 160)
        envelope = np.exp(-(t % beat) * rng.uniform(2, 8))
        wave = sum(np.sin(2 * np.pi * rng.uniform(80, 2000) * t) for _ in range(3)) * envelope
        songs.append((0.2 * wave + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
    return songs


def make_manifest(n_songs: int, n_val: int, seed: int = 0) -> Manifest:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "track_id": f"s{i}",
            "path": f"/nowhere/s{i}.wav",
            "artist": f"artist{i}",
            "split": "val" if i < n_val else "train",
            "label": CLASSES[i % 4],
            "appeal": float(rng.uniform()),
            **{TAG_PREFIX + t: float(rng.uniform()) for t in TAGS},
        }
        for i in range(n_songs)
    ]
    return Manifest(frame=pd.DataFrame(rows), label_names=CLASSES, tag_names=TAGS, regression_names=["appeal"])


def flops_per_sample(model: EncoreModel, chunk_samples: int, device: torch.device) -> float:
    batch = torch.randn(8, chunk_samples, device=device)
    with FlopCounterMode(display=False) as counter, torch.autocast(device.type, dtype=torch.bfloat16):
        outputs = model(batch, members=True)
        sum(o.float().sum() for o in outputs.values()).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 8


def synthetic(config, manifest, device, *, steps: int, bf16: bool, compile_: bool) -> tuple[float, float]:
    """Samples/s of optimiser steps on random batches already on the device; and FLOPs per sample."""
    tc = config.train
    chunk_samples = int(round(tc.chunk_seconds * config.features.sample_rate))
    torch.manual_seed(0)
    model = EncoreModel(**loop._network(config, manifest).model_kwargs()).to(device).to(memory_format=torch.channels_last)
    flops = flops_per_sample(model, chunk_samples, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    net = torch.compile(model) if compile_ else model
    batch_size = tc.batch_size
    batches = [
        (
            torch.randn(batch_size, chunk_samples, device=device),
            torch.randint(0, 4, (batch_size,), device=device),
            torch.rand(batch_size, len(TAGS), device=device),
            torch.randn(batch_size, 1, device=device),
        )
        for _ in range(4)
    ]

    def step(k: int) -> None:
        waveform, classes, tags, scores = batches[k % len(batches)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            outputs = net(waveform, members=True)
        losses = compute_losses(outputs, classes, classes, 1.0, tags, scores, None)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for k in range(5 if not compile_ else 10):  # warm-up: cuDNN autotuning, compilation
        step(k)
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    start = time.perf_counter()
    for k in range(steps):
        step(k)
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    return steps * batch_size / (time.perf_counter() - start), flops


def real_fit(config, manifest, waveforms, run_dir: Path, *, host_fed: bool) -> float:
    """Samples/s of ``fit`` after its first epoch."""
    bank = loop.CropBank
    if host_fed:
        loop.CropBank = lambda *args, **kwargs: None  # the loop then crops on the host, as before encore.train.feed
    try:
        result = loop.fit(manifest, waveforms, config, run_dir)
    finally:
        loop.CropBank = bank
    return float(np.mean([row["samples_per_second"] for row in result.history[1:]]))


def predict_rows(run_dir: Path, device: torch.device, n_songs: int, sample_rate: int) -> dict:
    songs = make_songs(n_songs, sample_rate, 30.0, seed=1)
    out = {}
    for name, dev in (("cpu", "cpu"), ("gpu", str(device))):
        predictor = Predictor.from_checkpoint(run_dir, device=dev)
        predictor.predict_arrays(songs[:2])  # warm-up
        start = time.perf_counter()
        arrays = predictor.predict_arrays(songs)
        out[name] = {
            "songs_per_s": n_songs / (time.perf_counter() - start),
            "probs": arrays["class_probs"],
            "bf16": bool(getattr(predictor.runner, "bf16", False)),
            "batch_size": predictor.batch_size,
        }
    return {
        "cpu_songs_per_s": out["cpu"]["songs_per_s"],
        "gpu_songs_per_s": out["gpu"]["songs_per_s"],
        "gpu_bf16": out["gpu"]["bf16"],
        "gpu_batch_size": out["gpu"]["batch_size"],
        "max_abs_prob_diff": float(np.abs(out["gpu"]["probs"] - out["cpu"]["probs"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="short_chunk_cnn")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per measurement (and per epoch of fit)")
    parser.add_argument("--songs", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--predict-songs", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("/tmp/encore-bench-gpu"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    n_train = args.songs - 4
    chunks_per_song = max(1, round(args.steps * args.batch_size / n_train))
    config = load_config(
        REPO / "configs" / "emotify.yaml",
        {
            "model.name": args.model,
            "train.chunk_seconds": model_entry(args.model).default_chunk_seconds,
            "train.chunk_hop_seconds": None,
            "train.batch_size": args.batch_size,
            "train.chunks_per_song": chunks_per_song,
            "train.epochs": args.epochs,
            "train.device": args.device,
            "train.refit_heads": [],
            "train.ema_decay": None,
            "train.appeal_weight": 1.0,
            "model.band_statistics": False,
            "train.log_every": 10_000,
            "train.select": "last",
        },
    )
    manifest = make_manifest(args.songs, 4)
    sample_rate = config.features.sample_rate
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), torch {torch.__version__}, "
        f"{args.model}, batch {args.batch_size}, {config.train.chunk_seconds} s chunks at {sample_rate} Hz"
    )
    songs = make_songs(args.songs, sample_rate, 60.0)
    waveforms = dict(zip(manifest.frame["track_id"], songs))

    rows: dict[str, float] = {}
    reference, flops = synthetic(config, manifest, device, steps=args.steps, bf16=True, compile_=False)
    print(f"(forward + backward: {flops / 1e9:.2f} GFLOP per sample)")
    print(f"\n{'configuration':45s} {'samples/s':>10s} {'ratio':>7s} {'TFLOP/s':>8s} {'% peak':>7s}")

    def row(name: str, rate: float) -> None:  # printed as it comes, so a run cut short still reports
        rows[name] = rate
        tflops = rate * flops / 1e12
        print(f"{name:45s} {rate:10.0f} {rate / reference:7.2f} {tflops:8.1f} {100 * tflops / PEAK_TFLOPS:6.1f}%", flush=True)

    row("synthetic, bf16 + channels-last (reference)", reference)
    row("fit(), songs cropped on the device", real_fit(config, manifest, waveforms, args.work / "bank", host_fed=False))
    row("fit(), host-fed (before)", real_fit(config, manifest, waveforms, args.work / "host", host_fed=True))
    row("synthetic, float32", synthetic(config, manifest, device, steps=args.steps, bf16=False, compile_=False)[0])
    if args.compile:
        row("synthetic, bf16 + torch.compile", synthetic(config, manifest, device, steps=args.steps, bf16=True, compile_=True)[0])
        compiled = config.model_copy(update={"train": config.train.model_copy(update={"compile": True})})
        row(
            "fit(), on the device + torch.compile",
            real_fit(compiled, manifest, waveforms, args.work / "compiled", host_fed=False),
        )

    predict = predict_rows(args.work / "bank", device, args.predict_songs, sample_rate)
    print(
        f"\nprediction, 30-s songs: CPU {predict['cpu_songs_per_s']:.1f} songs/s ({torch.get_num_threads()} threads), "
        f"GPU {predict['gpu_songs_per_s']:.1f} songs/s (batch {predict['gpu_batch_size']}, bf16 {predict['gpu_bf16']}): "
        f"{predict['gpu_songs_per_s'] / predict['cpu_songs_per_s']:.1f}x; "
        f"largest class-probability difference {predict['max_abs_prob_diff']:.4f}"
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "flops_per_sample": flops,
                    "predict": predict,
                    "settings": vars(args) | {"work": str(args.work), "out": str(args.out)},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
