"""Handcrafted features (one shared STFT) against a naive per-feature librosa extraction.

Usage: python bench/bench_handcrafted.py [--data ../shared/data/emotify] [--clips 20] [--quick]

Reference (same process, same clips, same n_fft/hop): every librosa.feature.* function
called on the waveform separately, each recomputing its own STFT (MFCC, centroid,
bandwidth, roll-off, flatness, contrast, zero-crossing rate, RMS, chroma, tempo, onsets),
as a first script would: version 1's families only, the reference of earlier runs. A second
reference adds version 2's families the same way (MFCC deltas, contrast again for its flux,
the onset envelope and beat tracker, librosa.effects.hpss on the waveform, chroma again for
its statistics, librosa.feature.tonnetz on the waveform). Then
encore.features.compute_handcrafted (every family, one STFT) on the same clips. Prints
seconds and the speed ratios (higher is better), on one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
from pathlib import Path

import librosa
import numpy as np

from encore.audio import load_audio
from encore.features.handcrafted import compute_handcrafted

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


def naive_all(y: np.ndarray) -> np.ndarray:
    """:func:`naive` plus version 2's families, each from the waveform the way the docs show it."""
    kw = dict(n_fft=N_FFT, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=20, **kw)
    contrast = librosa.feature.spectral_contrast(y=y, sr=SAMPLE_RATE, **kw)
    onset_envelope = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    _, beats = librosa.beat.beat_track(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    harmonic, percussive = librosa.effects.hpss(y)
    chroma = librosa.feature.chroma_stft(y=y, sr=SAMPLE_RATE, tuning=0.0, **kw)
    tonnetz = librosa.feature.tonnetz(y=y, sr=SAMPLE_RATE)
    extra = [
        librosa.feature.delta(mfcc).std(axis=1),
        np.abs(np.diff(contrast, axis=1)).mean(axis=1),
        np.array([onset_envelope.mean(), onset_envelope.std(), len(beats)]),
        np.array([np.mean(harmonic**2), np.mean(percussive**2)]),
        chroma.std(axis=1),
        tonnetz.mean(axis=1),
        tonnetz.std(axis=1),
    ]
    return np.concatenate([naive(y), *extra])


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
    naive_all(clips[0])
    t_naive = best_of(lambda: [naive(c) for c in clips], args.repeats)
    t_all = best_of(lambda: [naive_all(c) for c in clips], args.repeats)
    t_ours = best_of(
        lambda: [compute_handcrafted(c, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP) for c in clips], args.repeats
    )
    print(f"{len(clips)} Emotify clips x {args.seconds:.0f} s at 16 kHz, 1 thread, best of {args.repeats}")
    print(f"naive per-feature librosa, version 1's families (reference) : {t_naive:.3f} s   1.00x")
    print(f"naive per-feature librosa, every family (reference 2)       : {t_all:.3f} s   {t_naive / t_all:.2f}x")
    print(
        f"encore compute_handcrafted, every family ({len(compute_handcrafted(clips[0], sample_rate=SAMPLE_RATE))} features) : "
        f"{t_ours:.3f} s   {t_naive / t_ours:.2f}x reference, {t_all / t_ours:.2f}x reference 2"
    )


if __name__ == "__main__":
    main()
