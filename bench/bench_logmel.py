"""Our log-mel against librosa's on the same real clips, on 1 thread, and against the matmul peak.

Usage: python bench/bench_logmel.py [--data ../shared/data/emotify] [--clips 40] [--quick]

Decodes the first N Emotify MP3s at 16 kHz (30 s each), then, with torch and BLAS on one
thread, times (a) librosa.feature.melspectrogram + power_to_db per clip (the reference),
(b) encore's LogMelSpectrogram per clip and (c) as one batch, with identical settings.
Prints seconds, speed ratios against librosa, the largest difference in dB on bins above
-60 dB, and the achieved FLOP rate as a share of a large float32 matmul's measured peak
(FLOPs counted as 5 N log2 N per FFT frame plus the dense mel matmul, 2 n_mels (N/2+1)).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy and torch load: librosa's BLAS on one thread too

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from encore.audio import load_audio  # noqa: E402
from encore.features.logmel import LogMelSpectrogram  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(sample_rate=16000, n_fft=512, hop_length=256, n_mels=64, f_min=0.0, f_max=8000.0)


def librosa_log_mel(waveform: np.ndarray) -> np.ndarray:
    s = SETTINGS
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=s["sample_rate"],
        n_fft=s["n_fft"],
        hop_length=s["hop_length"],
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=s["n_mels"],
        fmin=s["f_min"],
        fmax=s["f_max"],
        htk=False,
        norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int, size: int = 2048) -> float:
    """FLOP/s of a size x size float32 matmul on the current torch threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    return 2 * size**3 / best_of(lambda: torch.matmul(a, b), repeats * 3)


def log_mel_flops(n_clips: int, n_frames: int) -> float:
    n = SETTINGS["n_fft"]
    per_frame = 5 * n * math.log2(n) + 2 * SETTINGS["n_mels"] * (n // 2 + 1)
    return n_clips * n_frames * per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "emotify"), help="Emotify folder")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--quick", action="store_true", help="10 clips, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.repeats = 10, 2
    torch.set_num_threads(1)
    files = sorted(Path(args.data, "audio").glob("*/*.mp3"))[: args.clips]
    if not files:
        parser.error(f"no MP3s under {args.data}/audio; pass --data")
    clips = [load_audio(f, sample_rate=SETTINGS["sample_rate"], duration=args.seconds) for f in files]
    n = min(len(c) for c in clips)
    clips = [c[:n] for c in clips]
    module = LogMelSpectrogram(**SETTINGS).eval()
    batch = torch.from_numpy(np.stack(clips))

    librosa_log_mel(clips[0])  # warm-up (numba, FFT plans)
    with torch.inference_mode():
        module(batch[:2])
        t_librosa = best_of(lambda: [librosa_log_mel(c) for c in clips], args.repeats)
        t_each = best_of(lambda: [module(batch[i]) for i in range(len(clips))], args.repeats)
        t_batch = best_of(lambda: module(batch), args.repeats)
        ours = module(batch).numpy()
    peak = matmul_peak(args.repeats)
    worst = 0.0
    for clip, mine in zip(clips, ours, strict=True):
        ref = librosa_log_mel(clip)
        mask = ref > ref.max() - 60
        worst = max(worst, float(np.abs(ref - mine)[mask].max()))
    flops = log_mel_flops(len(clips), ours.shape[-1])
    print(f"{len(clips)} Emotify clips x {n / SETTINGS['sample_rate']:.0f} s at 16 kHz, 1 thread, best of {args.repeats}")
    print(f"librosa (reference) per clip : {t_librosa:.3f} s   1.00x")
    print(f"encore per clip              : {t_each:.3f} s   {t_librosa / t_each:.2f}x")
    print(f"encore one batch             : {t_batch:.3f} s   {t_librosa / t_batch:.2f}x")
    print(f"matmul peak (2048^2 float32) : {peak / 1e9:.1f} GFLOP/s")
    best = min(t_each, t_batch)
    print(
        f"encore log-mel               : {flops / best / 1e9:.1f} GFLOP/s = {100 * flops / best / peak:.0f} % of peak "
        f"({flops / 1e9:.2f} GFLOP counted)"
    )
    print(f"max |difference| on bins above -60 dB: {worst:.5f} dB")


if __name__ == "__main__":
    main()
