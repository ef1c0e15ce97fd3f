"""Decode + resample (encore.audio.load_audio) against a bare soundfile.read, and worker scaling.

Usage: python bench/bench_decode.py [--data ../shared/data/emotify] [--files 400] [--quick]

Reference (in the same process, same files): soundfile.read(path, dtype="float32") at the
file's own rate. Then load_audio(path, sample_rate=16000): decode, downmix and soxr "HQ"
resample; load_audio at the files' own rate (no resampling); soxr alone on the decoded
waveforms, which bounds what decode + resample can reach in one thread. Then the same
load_audio over the files with 1 and with 2 worker processes.
Prints seconds and ratios (higher is better): ours / reference speed, 2 workers / 1 worker.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile
import soxr

from encore.audio import load_audio

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16000


def _decode(path: str) -> int:
    return int(load_audio(path, sample_rate=SAMPLE_RATE).shape[0])


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pool_time(files: list[str], workers: int) -> float:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_decode, files[: 2 * workers]))  # start the workers and warm them up
        return _timed(lambda: list(pool.map(_decode, files, chunksize=4)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "emotify"), help="Emotify folder")
    parser.add_argument("--files", type=int, default=400, help="how many MP3s (sorted) to decode")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--quick", action="store_true", help="40 files, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.files, args.repeats = 40, 1
    files = [str(p) for p in sorted(Path(args.data, "audio").glob("*/*.mp3"))[: args.files]]
    if not files:
        parser.error(f"no MP3s under {args.data}/audio; pass --data")
    for f in files[:2]:  # warm the page cache and the libraries
        soundfile.read(f, dtype="float32")
        load_audio(f, sample_rate=SAMPLE_RATE)
    reference = min(_timed(lambda: [soundfile.read(f, dtype="float32") for f in files]) for _ in range(args.repeats))
    ours = min(_timed(lambda: [load_audio(f, sample_rate=SAMPLE_RATE) for f in files]) for _ in range(args.repeats))
    native_rate = soundfile.info(files[0]).samplerate
    native = min(_timed(lambda: [load_audio(f, sample_rate=native_rate) for f in files]) for _ in range(args.repeats))
    decoded = [soundfile.read(f, dtype="float32")[0] for f in files]
    decoded = [x.mean(axis=1, dtype="float32") if x.ndim > 1 else x for x in decoded]
    resample = min(
        _timed(lambda: [soxr.resample(x, native_rate, SAMPLE_RATE, quality="HQ") for x in decoded]) for _ in range(args.repeats)
    )
    one = min(_pool_time(files, 1) for _ in range(args.repeats))
    two = min(_pool_time(files, 2) for _ in range(args.repeats))
    print(f"{len(files)} Emotify MP3s (22.05 kHz mono), {os.cpu_count()} CPUs, best of {args.repeats}")
    print(f"soundfile.read, native rate (reference) : {reference:7.3f} s   1.00x")
    print(f"load_audio -> 16 kHz (decode + soxr HQ)  : {ours:7.3f} s   {reference / ours:.2f}x")
    print(f"load_audio at the file's rate (no resample): {native:5.3f} s   {reference / native:.2f}x")
    print(
        f"soxr HQ alone, {native_rate} -> {SAMPLE_RATE} Hz        : {resample:7.3f} s   "
        f"(decode alone + this = {reference / (reference + resample):.2f}x at best)"
    )
    print(f"load_audio, 1 worker process             : {one:7.3f} s")
    print(f"load_audio, 2 worker processes           : {two:7.3f} s   {one / two:.2f}x one worker")


if __name__ == "__main__":
    main()
