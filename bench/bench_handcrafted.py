"""Handcrafted features (one shared STFT) against a naive per-feature librosa extraction.

Usage: python bench/bench_handcrafted.py [--data ../shared/data/emotify] [--clips 20] [--quick]

Reference (same process, same clips, same n_fft/hop): every librosa.feature.* function
called on the waveform separately, each recomputing its own STFT (MFCC, centroid,
bandwidth, roll-off, flatness, contrast, zero-crossing rate, RMS, chroma, tempo, onsets),
as a first script would. Then encore.features.compute_handcrafted on the same clips.
Prints seconds and the speed ratio (higher is better), on one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from encore.audio import load_audio  # noqa: E402
from encore.features.handcrafted import compute_handcrafted  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RATE, N_FFT, HOP = 16000, 2048, 512


def naive(y: np.ndarray) -> np.ndarray:
    """Each feature from the waveform, the way the librosa docs show them one by one."""
    kw = dict(n_fft=N_FFT, hop_length=HOP)
    blocks = [
        librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=20, **kw),
        librosa.feature.spectral_centroid(y=y, sr=SAMPLE_RATE, **kw),
        librosa.feature.spectral_bandwidth(y=y, sr=SAMPLE_RATE, **kw),
        librosa.feature.spectral_rolloff(y=y, sr=SAMPLE_RATE, **kw),
        librosa.feature.spectral_flatness(y=y, **kw),
        librosa.feature.spectral_contrast(y=y, sr=SAMPLE_RATE, **kw),
        librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP),
        librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP),
        librosa.feature.chroma_stft(y=y, sr=SAMPLE_RATE, tuning=0.0, **kw),
    ]
    values = [v for block in blocks for v in (block.mean(axis=1), block.std(axis=1))]
    tempo = librosa.feature.tempo(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    onsets = librosa.onset.onset_detect(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    values.append(np.array([tempo[0], len(onsets) / (len(y) / SAMPLE_RATE)]))
    return np.concatenate(values)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "emotify"), help="Emotify folder")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--quick", action="store_true", help="5 clips, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.repeats = 5, 1
    files = sorted(Path(args.data, "audio").glob("*/*.mp3"))[: args.clips]
    if not files:
        parser.error(f"no MP3s under {args.data}/audio; pass --data")
    clips = [load_audio(f, sample_rate=SAMPLE_RATE, duration=args.seconds) for f in files]
    naive(clips[0])  # warm-up: numba compilation, FFT plans
    compute_handcrafted(clips[0], sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP)
    t_naive = best_of(lambda: [naive(c) for c in clips], args.repeats)
    t_ours = best_of(lambda: [compute_handcrafted(c, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP) for c in clips], args.repeats)
    print(f"{len(clips)} Emotify clips x {args.seconds:.0f} s at 16 kHz, 1 thread, best of {args.repeats}")
    print(f"naive per-feature librosa (reference) : {t_naive:.3f} s   1.00x")
    print(f"encore compute_handcrafted            : {t_ours:.3f} s   {t_naive / t_ours:.2f}x")


if __name__ == "__main__":
    main()
