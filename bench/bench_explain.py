"""Cost of a song explanation against one prediction of the same song, in one process.

Usage: python bench/bench_explain.py [--data ../shared/data/emotify] [--clips 8] [--seconds 30]
       [--run RUN_DIR] [--quick]

Decodes the first N Emotify MP3s at the model's rate and times, per clip, the reference
``predict_waveform`` of the same clip and then each explanation the model has: a CNN's
``explain_waveform`` with occlusion (16 time segments x 8 mel bands) and integrated
gradients (32 steps), and for every model ``explain_audio`` (cells silenced in the audio)
on the CLI's 16 x 8 grid and the service's 8 x 4. Prints seconds per clip and each
method's ratio to the reference prediction. ``--run`` takes any run folder (CNN,
classical, blend); without it the CNN is the default ``small_cnn`` at its initial weights
(timing only: the cost does not depend on training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from encore.audio import load_audio
from encore.explain import explain_audio, explain_waveform
from encore.inference import Predictor, load_predictor
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
    parser.add_argument("--run", type=Path, default=None, help="a run folder of any kind (default: an untrained small_cnn)")
    parser.add_argument("--quick", action="store_true", help="2 clips of 10 s")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.seconds = 2, 10.0
    torch.set_num_threads(1)
    predictor = load_predictor(args.run) if args.run else untrained_predictor()
    files = sorted(args.data.joinpath("audio").glob("*/*.mp3"))[: args.clips]
    if not files:
        raise SystemExit(f"no MP3s under {args.data}/audio; pass --data")
    clips = [load_audio(f, sample_rate=predictor.sample_rate, duration=args.seconds) for f in files]
    predictor.predict_waveform(clips[0])  # warm-up
    methods = {}
    if isinstance(predictor, Predictor) and predictor.model is not None:
        methods["occlusion 16x8"] = lambda clip: explain_waveform(predictor, clip, method="occlusion")
        methods["integrated gradients 32"] = lambda clip: explain_waveform(predictor, clip, method="integrated_gradients")
    methods["audio occlusion 16x8"] = lambda clip: explain_audio(predictor, clip, n_segments=16, n_bands=8)
    methods["audio occlusion 8x4"] = lambda clip: explain_audio(predictor, clip, n_segments=8, n_bands=4)
    times: dict[str, list[float]] = {"predict (reference)": [], **{name: [] for name in methods}}
    for clip in clips:
        times["predict (reference)"].append(seconds(lambda: predictor.predict_waveform(clip)))
        for name, explain in methods.items():
            times[name].append(seconds(lambda: explain(clip)))
    reference = float(np.mean(times["predict (reference)"]))
    print(
        f"{len(clips)} clips of {args.seconds:g} s, 1 thread, model {'from ' + str(args.run) if args.run else 'small_cnn (untrained)'}"
        f" ({getattr(predictor, 'backend', 'torch')})"
    )
    print(f"{'':26s} {'s / clip':>9s} {'x predict':>10s}")
    for name, values in times.items():
        mean = float(np.mean(values))
        print(f"{name:26s} {mean:9.3f} {mean / reference:10.1f}")


if __name__ == "__main__":
    main()
