"""Cost of a song explanation against one prediction of the same song, in one process.

Usage: python bench/bench_explain.py [--data ../shared/data/emotify] [--clips 8] [--seconds 30]
       [--run RUN_DIR] [--quick]

Decodes the first N Emotify MP3s at the model's rate and times, per clip, the reference
``Predictor.predict_waveform`` and then ``explain_waveform`` with occlusion (16 time
segments x 8 mel bands) and integrated gradients (32 steps). Prints seconds per clip and
each method's ratio to the reference prediction. Without --run the CNN is the default
``small_cnn`` at its initial weights (timing only: the cost does not depend on training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from encore.audio import load_audio
from encore.explain import explain_waveform
from encore.inference import Predictor
from encore.models.card import ChunkSpec, ModelCard, NetworkSpec, RegressionStats
from encore.models.classifier import EncoreModel

ROOT = Path(__file__).resolve().parents[1]


def untrained_predictor() -> Predictor:
    torch.manual_seed(0)
    kwargs = {
        "frontend": {"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 64, "f_max": 8000.0},
        "backbone": "small_cnn",
        "label_names": ["a", "b", "c", "d"],
        "regression_names": ["appeal"],
    }
    card = ModelCard(
        network=NetworkSpec(**kwargs), chunk=ChunkSpec(seconds=3.0), regression_stats=RegressionStats(mean=[0.0], std=[1.0])
    )
    return Predictor(EncoreModel(**kwargs).eval(), card)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "emotify")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--run", type=Path, default=None, help="a CNN run folder (default: an untrained small_cnn)")
    parser.add_argument("--quick", action="store_true", help="2 clips of 10 s")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.seconds = 2, 10.0
    torch.set_num_threads(1)
    predictor = Predictor.from_checkpoint(args.run) if args.run else untrained_predictor()
    files = sorted(args.data.joinpath("audio").glob("*/*.mp3"))[: args.clips]
    if not files:
        raise SystemExit(f"no MP3s under {args.data}/audio; pass --data")
    clips = [load_audio(f, sample_rate=predictor.sample_rate, duration=args.seconds) for f in files]
    predictor.predict_waveform(clips[0])  # warm-up
    times = {"predict (reference)": [], "occlusion 16x8": [], "integrated gradients 32": []}
    for clip in clips:
        times["predict (reference)"].append(seconds(lambda: predictor.predict_waveform(clip)))
        times["occlusion 16x8"].append(seconds(lambda: explain_waveform(predictor, clip, method="occlusion")))
        times["integrated gradients 32"].append(seconds(lambda: explain_waveform(predictor, clip, method="integrated_gradients")))
    reference = float(np.mean(times["predict (reference)"]))
    print(
        f"{len(clips)} clips of {args.seconds:g} s, 1 thread, model {'from ' + str(args.run) if args.run else 'small_cnn (untrained)'}"
    )
    print(f"{'':26s} {'s / clip':>9s} {'x predict':>10s}")
    for name, values in times.items():
        mean = float(np.mean(values))
        print(f"{name:26s} {mean:9.3f} {mean / reference:10.1f}")


if __name__ == "__main__":
    main()
