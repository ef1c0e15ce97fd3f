"""A song-level embedding pass (a probe's first fold, the refit's songs) by memory format and chunks per batch.

Usage: python bench/bench_embed.py [--data ../shared/data/emotify/audio] [--songs 10] [--rounds 3]
       [--threads 2] [--models pretrained:musicnn-msd,small_cnn] [--precision fp32|bf16]

Decodes ``--songs`` one-minute Emotify clips (spread over the genres) at each model's rate
and times :func:`encore.train.refit.song_embeddings`, the pass that embeds every song a
probe trains on or scores and every song of a song-level refit, on ``--threads`` threads
(as `encore train` runs it on a 2-core machine). The reference is how `encore train` ran
it before this bench: the model in channels-last memory (``train.channels_last``, the
default) and 64 chunks a batch, so a one-minute song went through in one batch. The
variants are contiguous (NCHW) memory and channels-last, at 1, 2, 4 and 8 chunks a batch.
Rounds are interleaved and the best round counts. Each variant's largest difference from
the reference embedding is printed beside its time and ratio.

``small_cnn`` is the default config's network with random weights (weights do not change
speed); ``pretrained:NAME`` is a converted published model (``encore pretrained convert``).

``--train-step`` times a training step instead (forward and backward of 32 chunks, the
model in train mode, as fine-tuning runs it) in contiguous and channels-last memory.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def load(name: str):
    """(model, sample_rate, chunk_samples, hop_samples) for a published model or the default small_cnn."""
    from encore.config import load_config
    from encore.models.checkpoint import load_model
    from encore.models.classifier import EncoreModel

    if name.startswith("pretrained:"):
        from encore.pretrained import resolve_run

        run = resolve_run(name)
        model, card = load_model(run / "checkpoint.pt" if run.is_dir() else run)
        return model.eval(), card.sample_rate, card.chunk_samples, card.hop_samples
    config = load_config(None, {"model.name": name})
    torch.manual_seed(0)
    model = EncoreModel(
        frontend=config.features.model_dump(),
        backbone=config.model.name,
        backbone_kwargs=dict(config.model.kwargs),
        label_names=["a", "b", "c", "d"],
    ).eval()
    rate = config.features.sample_rate
    chunk = int(round(config.train.chunk_seconds * rate))
    return model, rate, chunk, chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify" / "audio")
    parser.add_argument("--songs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="pretrained:musicnn-msd,small_cnn")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--train-step", action="store_true", help="time forward + backward of 32 chunks instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from encore.data.waveforms import load_waveforms
    from encore.inference.backends import bf16_supported
    from encore.train.refit import song_embeddings

    bf16 = args.precision == "bf16"
    if bf16 and not bf16_supported():
        raise SystemExit("--precision bf16: this CPU has no bfloat16 in hardware")
    genres = sorted(d for d in args.data.iterdir() if d.is_dir())
    paths = [sorted(g.glob("*.mp3"))[i] for i in range(args.songs) for g in genres][: args.songs]
    if args.train_step:
        train_steps(args.models.split(","), args.rounds, bf16)
        return
    print(f"{args.songs} songs, {args.threads} threads, {args.precision}, best of {args.rounds} interleaved rounds")
    for name in args.models.split(","):
        model, rate, chunk, hop = load(name)
        waves, _ = load_waveforms(paths, sample_rate=rate)
        channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
        variants = {"channels-last, batch 64 (reference: `encore train` before)": (channels_last, 64)}
        for memory, net in (("contiguous", model), ("channels-last", channels_last)):
            for batch in (1, 2, 4, 8):
                variants[f"{memory}, batch {batch}"] = (net, batch)
        variants["contiguous, batch 64"] = (model, 64)

        def embed(net, batch, songs):
            return song_embeddings(net, songs, chunk_samples=chunk, hop_samples=hop, bf16=bf16, batch_size=batch)

        best = dict.fromkeys(variants, float("inf"))
        out = {}
        for net, batch in variants.values():
            embed(net, batch, waves[:1])  # warm-up: oneDNN picks its kernels per shape
        for _ in range(args.rounds):
            for label, (net, batch) in variants.items():
                started = time.perf_counter()
                out[label] = embed(net, batch, waves)
                best[label] = min(best[label], time.perf_counter() - started)
        reference = next(iter(variants))
        print(f"\n{name} ({len(waves)} songs, {sum(len(w) for w in waves) / rate:.0f} s of audio)")
        print("| variant | seconds | vs reference | largest difference |")
        print("| --- | --- | --- | --- |")
        for label in variants:
            diff = float(np.abs(out[label] - out[reference]).max())
            print(f"| {label} | {best[label]:.2f} | {best[reference] / best[label]:.2f}x | {diff:.1e} |")


def train_steps(names: list[str], rounds: int, bf16: bool) -> None:
    """Forward and backward of 32 chunks in contiguous and channels-last memory, best of ``rounds``."""
    print(f"training step: 32 chunks, forward + backward, {'bf16' if bf16 else 'fp32'}, best of {rounds} interleaved rounds")
    for name in names:
        model, _, chunk, _ = load(name)
        model.train()
        variants = {
            "channels-last (reference: `encore train` before)": copy.deepcopy(model).to(memory_format=torch.channels_last),
            "contiguous": model,
        }
        x = torch.randn(32, chunk, generator=torch.Generator().manual_seed(0)) * 0.1
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds + 1):  # the first round warms oneDNN up
            for label, net in variants.items():
                started = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    outputs = net(x)
                sum(logits.float().sum() for logits in outputs.values()).backward()
                net.zero_grad()
                best[label] = min(best[label], time.perf_counter() - started) if _ else best[label]
        reference = next(iter(variants))
        print(f"\n{name}\n| variant | seconds a step | vs reference |\n| --- | --- | --- |")
        for label in variants:
            print(f"| {label} | {best[label]:.2f} | {best[reference] / best[label]:.2f}x |")


if __name__ == "__main__":
    main()
