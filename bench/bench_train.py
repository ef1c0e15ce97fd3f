"""CNN training speed: encore's shipped CPU settings against plain eager float32, in one run.

Usage:
    python bench/bench_train.py [--data ../shared/data/emotify] [--model small_cnn] [--steps 20]
                                [--batch-size 32] [--threads N]

Trains the same model (same initial weights, same batches of 3-s crops of real Emotify
songs, log-mel inside the model, class + 9 tag + score heads) for --steps optimiser steps
in each configuration and prints samples per second and the ratio against the reference:

- reference: eager float32, contiguous (NCHW) layout;
- channels-last only; bfloat16 autocast only;
- channels-last + bfloat16 autocast (the log-mel stays float32): what
  ``train.precision=auto`` / ``train.channels_last=true`` ship on a CPU with bfloat16 in
  hardware (AVX-512 BF16 or AMX); on other AVX-512 CPUs oneDNN emulates bfloat16, the
  rows say "(emulated)", and ``auto`` ships channels-last float32 instead;
- shipped + time stretch + pitch shift (the cost of those augmentations).

It also reports the final-step loss of each configuration on the same batches, and the
share of a step spent preparing the batch (crops + gain/noise), which shows whether data
loading keeps the cores busy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from encore.audio import load_audio
from encore.audio.chunking import random_crop
from encore.config import AugmentConfig
from encore.inference.backends import bf16_supported
from encore.models.classifier import EncoreModel
from encore.train.augment import augment_waveforms
from encore.train.loop import resolve_precision

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


def make_model(name: str, augment: dict) -> EncoreModel:
    torch.manual_seed(0)
    return EncoreModel(
        frontend={"sample_rate": SAMPLE_RATE, "n_fft": 512, "hop_length": 256, "n_mels": 64, "f_max": 8000.0},
        backbone=name,
        label_names=["a", "b", "c", "d"],
        tag_names=[f"t{i}" for i in range(9)],
        regression_names=["s"],
        spec_augment={"time_masks": 2, "time_mask_frames": 12, "freq_masks": 2, "freq_mask_bins": 6, **augment},
    )


def run(name: str, batches: list[torch.Tensor], *, channels_last: bool, bf16: bool, augment: dict | None = None) -> dict:
    model = make_model(name, augment or {}).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    target_class = torch.arange(len(batches[0])) % 4
    target_tags = (torch.arange(len(batches[0]) * 9).reshape(-1, 9) % 3 == 0).float()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    times, loss = [], float("nan")
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        with autocast():
            out = model(batch)
        total = (
            torch.nn.functional.cross_entropy(out["class"].float(), target_class)
            + torch.nn.functional.binary_cross_entropy_with_logits(out["tags"].float(), target_tags)
            + out["regression"].float().pow(2).mean()
        )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if i >= 2:  # the first steps pick kernels
            times.append(time.perf_counter() - t)
        loss = total.item()
    return {"samples_per_second": len(batches[0]) * len(times) / sum(times), "final_loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--songs", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(args.data.glob("audio/*/*.mp3"))[:: max(1, 400 // args.songs)][: args.songs]
    songs = [load_audio(f, sample_rate=SAMPLE_RATE) for f in files]
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    augment = AugmentConfig()
    t = time.perf_counter()
    batches = []
    for _ in range(args.steps):
        idx = rng.integers(0, len(songs), args.batch_size)
        crops = np.stack([random_crop(songs[i], 3 * SAMPLE_RATE, rng) for i in idx])
        batches.append(augment_waveforms(torch.from_numpy(crops), augment, generator))
    prep = (time.perf_counter() - t) / args.steps
    native = resolve_precision("auto", torch.device("cpu")) is not None  # what train.precision=auto takes
    runs_bf16 = bf16_supported(native=False)
    print(
        f"{args.model}, batch {args.batch_size} x 3 s, {args.steps} steps, {args.threads} threads, "
        f"{len(songs)} Emotify songs; CPU bfloat16: {'hardware' if native else 'emulated' if runs_bf16 else 'none'}"
    )
    bf16_note = "" if native else " (emulated)"
    configs = [
        ("eager float32 (reference)", dict(channels_last=False, bf16=False)),
        ("channels-last float32", dict(channels_last=True, bf16=False)),
        (f"bfloat16 autocast, NCHW{bf16_note}", dict(channels_last=False, bf16=True)),
        (f"channels-last + bfloat16{bf16_note}", dict(channels_last=True, bf16=True)),
        (
            "shipped + time stretch + pitch shift",
            dict(channels_last=True, bf16=native, augment={"time_stretch": 0.1, "pitch_shift_semitones": 2.0}),
        ),
    ]
    shipped_label = "channels-last + bfloat16" if native else "channels-last float32"
    results = {}
    for label, kwargs in configs:
        if kwargs["bf16"] and not runs_bf16:
            continue
        results[label] = run(args.model, batches, **kwargs)
    reference = results["eager float32 (reference)"]["samples_per_second"]
    print(f"{'configuration':40s} {'samples/s':>10s} {'vs ref':>7s} {'final loss':>10s}")
    for label, r in results.items():
        mark = "  <- shipped (train.precision=auto)" if label == shipped_label else ""
        print(
            f"{label:40s} {r['samples_per_second']:10.1f} {r['samples_per_second'] / reference:6.2f}x {r['final_loss']:10.4f}{mark}"
        )
    shipped = results[shipped_label]
    step_time = args.batch_size / shipped["samples_per_second"]
    print(f"batch preparation: {prep * 1000:.1f} ms per batch = {prep / (prep + step_time):.0%} of a shipped step")


if __name__ == "__main__":
    main()
