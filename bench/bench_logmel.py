"""Our log-mel against librosa's on the same real clips, in one process.

Usage: python bench/bench_logmel.py [--data ../shared/data/emotify] [--clips 40]

Decodes the first N Emotify MP3s at 16 kHz, then times (a) librosa.feature.melspectrogram
+ power_to_db per clip and (b) encore's LogMelSpectrogram, per clip and batched, with the
same settings. Prints seconds and the speed ratio against librosa, and the largest
difference in dB on bins above -60 dB (relative to each clip's max).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from encore.audio import load_audio
from encore.features.logmel import LogMelSpectrogram

SETTINGS = dict(sample_rate=16000, n_fft=512, hop_length=256, n_mels=64, f_min=0.0, f_max=8000.0)


def librosa_log_mel(waveform: np.ndarray) -> np.ndarray:
    s = SETTINGS
    mel = librosa.feature.melspectrogram(
        y=waveform, sr=s["sample_rate"], n_fft=s["n_fft"], hop_length=s["hop_length"], window="hann", center=True,
        pad_mode="constant", power=2.0, n_mels=s["n_mels"], fmin=s["f_min"], fmax=s["f_max"], htk=False, norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/emotify")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    files = sorted(Path(args.data, "audio").glob("*/*.mp3"))[: args.clips]
    clips = [load_audio(f, sample_rate=SETTINGS["sample_rate"], duration=args.seconds) for f in files]
    n = min(len(c) for c in clips)
    clips = [c[:n] for c in clips]
    module = LogMelSpectrogram(**SETTINGS).eval()
    batch = torch.from_numpy(np.stack(clips))

    librosa_log_mel(clips[0])  # warm-up (numba, FFT plans)
    with torch.inference_mode():
        module(batch[:2])
        t_librosa = best_of(lambda: [librosa_log_mel(c) for c in clips])
        t_ours_each = best_of(lambda: [module(batch[i]) for i in range(len(clips))])
        t_ours_batch = best_of(lambda: module(batch))
        ours = module(batch).numpy()
    worst = 0.0
    for clip, mine in zip(clips, ours, strict=True):
        ref = librosa_log_mel(clip)
        mask = ref > ref.max() - 60
        worst = max(worst, float(np.abs(ref - mine)[mask].max()))
    print(f"{len(clips)} Emotify clips x {n / SETTINGS['sample_rate']:.0f} s at 16 kHz, torch threads {torch.get_num_threads()}")
    print(f"librosa (reference) per clip : {t_librosa:.3f} s   1.00x")
    print(f"encore per clip              : {t_ours_each:.3f} s   {t_librosa / t_ours_each:.2f}x")
    print(f"encore one batch             : {t_ours_batch:.3f} s   {t_librosa / t_ours_batch:.2f}x")
    print(f"max |difference| on bins above -60 dB: {worst:.5f} dB")


if __name__ == "__main__":
    main()
