"""A song-level probe's held-out predictions in `encore cv`: the network against the embedding cache, in one process.

Usage: python bench/bench_probe_cv.py [--data ../shared/data/emotify/audio] [--train 60] [--test 40]
       [--model pretrained:musicnn-msd] [--precision fp32|bf16|auto]

Decodes the first ``--train`` + ``--test`` clips of a folder-per-label library (spread over
the labels) at the published model's rate, fits the probe (``--freeze-backbone``) on the
first ones with a fresh embedding cache in a temporary folder, then predicts the held-out
ones three ways: through the network (``Predictor.predict_arrays``, the reference: how
`encore cv` predicted a probe's held-out songs before), from the embedding cache while it
does not hold them yet (a song's first fold: the network runs once and the embedding is
kept), and from the warm cache (every later fold, where the song trained the others).
It checks the three agree and prints seconds and ratios. ``encore pretrained convert``
the model first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def clips(source: Path, n: int) -> list[tuple[str, Path]]:
    per_label = {d.name: sorted(d.iterdir()) for d in sorted(source.iterdir()) if d.is_dir()}
    out: list[tuple[str, Path]] = []
    for i in range(max(len(files) for files in per_label.values())):
        for label, files in per_label.items():
            if len(out) < n and i < len(files):
                out.append((label, files[i]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "emotify" / "audio")
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--model", default="pretrained:musicnn-msd")
    parser.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"], help="train.precision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ENCORE_EMBEDDING_CACHE"] = str(Path(tmp) / "embeddings")
        import pandas as pd

        from encore.config import EncoreConfig
        from encore.data.manifest import Manifest
        from encore.data.waveforms import load_waveforms
        from encore.inference import Predictor
        from encore.models.checkpoint import load_model
        from encore.pretrained import resolve_run
        from encore.train.loop import fit
        from encore.train.transfer import cached_probe_arrays, default_embedding_cache

        _, card = load_model(resolve_run(args.model))
        songs = clips(args.data, args.train + args.test)
        waveforms, failures = load_waveforms([str(p) for _, p in songs], sample_rate=card.sample_rate)
        if failures:
            raise SystemExit(f"{len(failures)} clips failed to decode")
        ids = [f"s{i:03d}" for i in range(len(songs))]
        frame = pd.DataFrame(
            {
                "track_id": ids,
                "path": [str(p) for _, p in songs],
                "artist": ids,
                "label": [label for label, _ in songs],
                "split": ["train"] * args.train + ["test"] * args.test,
            }
        )
        manifest = Manifest(frame=frame, label_names=sorted({label for label, _ in songs}), tag_names=[], regression_names=[])
        config = EncoreConfig.model_validate(
            {
                "features": {"sample_rate": card.sample_rate},
                "train": {"init_from": args.model, "freeze_backbone": True, "device": "cpu", "precision": args.precision},
            }
        )
        result = fit(manifest, dict(zip(ids, waveforms, strict=True)), config, Path(tmp) / "probe")
        predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
        test = waveforms[args.train :]
        timings = {}
        started = time.perf_counter()
        direct = predictor.predict_arrays(test)
        timings["network (reference)"] = time.perf_counter() - started
        for name in ("cache, first fold", "cache, later folds"):
            started = time.perf_counter()
            cached = cached_probe_arrays(predictor, test, cache_dir=default_embedding_cache())
            timings[name] = time.perf_counter() - started
            assert cached is not None
            worst = max(float(np.max(np.abs(cached[k] - direct[k]))) for k in cached)
            print(f"{name}: largest difference from the network's predictions {worst:.2e}")
        reference = timings["network (reference)"]
        print(f"\n{args.test} held-out songs, {args.model} probe, train.precision={args.precision}, {torch_threads()} threads")
        for name, seconds in timings.items():
            print(f"  {name:22s} {seconds:7.2f} s   {reference / seconds:6.1f}x")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
