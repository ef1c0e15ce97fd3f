"""Feature extraction over a catalogue: worker processes, the cache, resumption, shards.

:func:`extract_features` computes handcrafted features (for the random-forest baseline) or
log-mels for many files with N worker processes. Every result goes into the
content-addressed :class:`~encore.features.FeatureCache` as soon as it is computed,
atomically, so a run that is killed leaves only whole entries and a rerun skips them. A
file that cannot be decoded is reported and skipped while the others go on.

:func:`~encore.shards.select_shard` splits a catalogue into ``n`` disjoint shards that
together cover it (every n-th file by name), so ``encore extract --shard i/n`` can run as ``n``
jobs (a Slurm array, Kubernetes jobs, torchrun ranks). Shard ``i`` records what it did in
``<cache>/<settings digest>/shards/shard-<i>-of-<n>.csv``, replaced whole by a rerun.

Example:
    >>> settings = handcrafted_settings(sample_rate=16000)
    >>> result = extract_features(paths, settings=settings, cache=FeatureCache("cache"), workers=2)
    >>> result.features["songs/a.mp3"].shape
    (92,)
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encore.audio import AudioChecks, load_audio, stream_audio
from encore.exceptions import AudioDecodeError, ParameterError
from encore.features.cache import FeatureCache, MemoryFeatureCache, file_digest, settings_digest, write_atomic
from encore.shards import parse_shard, select_shard  # re-exported: the shard rule lives in encore.shards

logger = logging.getLogger(__name__)

__all__ = [
    "ExtractionFailure",
    "ExtractionResult",
    "compute_feature_matrix",
    "compute_feature_rows",
    "extract_features",
    "handcrafted_settings",
    "logmel_settings",
    "parse_shard",
    "segment_waveforms",
    "select_shard",
    "write_shard_index",
]

HANDCRAFTED_VERSION = 2  # bump when compute_handcrafted's output changes
KINDS = ("handcrafted", "logmel")
_STREAM_BLOCK_SECONDS = 60.0


def handcrafted_settings(*, sample_rate: int, n_fft: int = 2048, hop_length: int = 512, n_mfcc: int = 20) -> dict[str, Any]:
    """Cache settings for :func:`~encore.features.compute_handcrafted` features of a file."""
    return {
        "kind": "handcrafted",
        "version": HANDCRAFTED_VERSION,
        "sample_rate": int(sample_rate),
        "n_fft": int(n_fft),
        "hop_length": int(hop_length),
        "n_mfcc": int(n_mfcc),
    }


def compute_feature_matrix(
    waveforms: Sequence[np.ndarray],
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    cache: FeatureCache | MemoryFeatureCache | None = None,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(n_songs, n_features) handcrafted features of decoded songs, cached by the waveform's content.

    What the classical models train and predict on; ``cache`` keys an entry by the
    waveform's digest and :func:`handcrafted_settings`.
    """
    from encore.features.handcrafted import compute_handcrafted

    settings = handcrafted_settings(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length)
    rows = []
    for waveform in waveforms:
        compute = lambda w=waveform: compute_handcrafted(w, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length)
        if cache is None:
            rows.append(compute())
        else:
            digest = hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).tobytes()).hexdigest()
            rows.append(cache.get_or_compute(digest, settings, compute))
        if callback is not None:
            callback(1)
    return np.stack(rows).astype(np.float32)


def segment_waveforms(
    waveforms: Sequence[np.ndarray], *, sample_rate: int, seconds: float, max_segments: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut each song into non-overlapping segments of ``seconds``.

    A last piece of at least half a segment is kept, a shorter one dropped; a song shorter
    than half a segment is one segment. A song with more than ``max_segments`` keeps that
    many, evenly spaced from its first to its last.

    Returns:
        ``(segments, owner)``: the segments in song order, and each one's song index.
    """
    if seconds <= 0 or max_segments < 1:
        raise ParameterError(f"segments of {seconds} s, at most {max_segments} a song: both must be positive")
    length = max(1, round(seconds * sample_rate))
    pieces: list[np.ndarray] = []
    owner: list[int] = []
    for song, waveform in enumerate(waveforms):
        starts = [s for s in range(0, max(len(waveform), 1), length) if s == 0 or len(waveform) - s >= length / 2]
        if len(starts) > max_segments:
            starts = [starts[k] for k in np.linspace(0, len(starts) - 1, max_segments).round().astype(int)]
        pieces += [waveform[s : s + length] for s in starts]
        owner += [song] * len(starts)
    return pieces, np.asarray(owner, dtype=int)


def compute_feature_rows(
    waveforms: Sequence[np.ndarray],
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    segment_seconds: float | None = None,
    max_segments: int = 6,
    cache: FeatureCache | MemoryFeatureCache | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows a classical model reads: one per song, or with ``segment_seconds`` one per segment.

    Returns:
        ``(features, owner)``: :func:`compute_feature_matrix` of the songs or of their
        segments (:func:`segment_waveforms`), and each row's song index. ``callback`` is
        called once per song.
    """
    if segment_seconds is None:
        rows = compute_feature_matrix(
            waveforms, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, cache=cache, callback=callback
        )
        return rows, np.arange(len(waveforms))
    pieces, owner = segment_waveforms(waveforms, sample_rate=sample_rate, seconds=segment_seconds, max_segments=max_segments)
    last = np.r_[owner[1:] != owner[:-1], True] if len(owner) else np.zeros(0, dtype=bool)  # a song's last segment
    done = iter(last)
    tick = None if callback is None else (lambda _n: callback(1) if next(done) else None)
    rows = compute_feature_matrix(pieces, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, cache=cache, callback=tick)
    return rows, owner


def logmel_settings(frontend_settings: Mapping[str, Any]) -> dict[str, Any]:
    """Cache settings for a whole file's log-mel; ``frontend_settings`` as ``LogMelSpectrogram.settings()``."""
    return {"kind": "logmel", **dict(frontend_settings)}


@dataclass(frozen=True)
class ExtractionFailure:
    """A file that was skipped, and why."""

    path: str
    reason: str


@dataclass
class ExtractionResult:
    """What :func:`extract_features` did.

    Attributes:
        features: Every input path (as given, ``str``) to its array, or ``None`` if it failed.
        failures: The failed files with their reasons, in input order.
        n_cached: Files found in the cache (skipped: resumption or a previous run).
        n_computed: Files computed and stored now.
        digests: Path to the audio's SHA-256 digest (the cache key), where it was read.
    """

    features: dict[str, np.ndarray | None] = field(default_factory=dict)
    failures: list[ExtractionFailure] = field(default_factory=list)
    n_cached: int = 0
    n_computed: int = 0
    digests: dict[str, str] = field(default_factory=dict)


def _compute(path: str, settings: Mapping[str, Any], checks: AudioChecks | None) -> np.ndarray:
    """The features of one file under ``settings``."""
    params = {key: value for key, value in settings.items() if key not in ("kind", "version")}
    if settings["kind"] == "handcrafted":
        from encore.features.handcrafted import compute_handcrafted

        sample_rate = params.pop("sample_rate")
        waveform = load_audio(path, sample_rate=sample_rate, checks=checks)
        return compute_handcrafted(waveform, sample_rate=sample_rate, **params)
    from encore.features.logmel import LogMelSpectrogram
    from encore.features.streaming import log_mel_chunked

    frontend = LogMelSpectrogram(**params).eval()
    blocks = stream_audio(path, sample_rate=frontend.sample_rate, block_seconds=_STREAM_BLOCK_SECONDS)
    if checks is not None:  # checks need the whole waveform; log-mels of long files stream
        waveform = load_audio(path, sample_rate=frontend.sample_rate, checks=checks)
        blocks = iter([waveform])
    return log_mel_chunked(blocks, frontend).numpy()


def _extract_one(
    path: str, settings: Mapping[str, Any], cache_root: str, checks: AudioChecks | None
) -> tuple[str, str, str | None, np.ndarray | None, str | None]:
    """One file: ``(path, status, digest, array, reason)``, status cached/computed/failed."""
    cache = FeatureCache(cache_root)
    try:
        digest = file_digest(path)
    except OSError as exc:
        return path, "failed", None, None, f"cannot read the file ({exc.strerror or exc}); check the path"
    cached = cache.get(digest, settings)
    if cached is not None:
        return path, "cached", digest, cached, None
    try:
        array = np.asarray(_compute(path, settings, checks))
    except (AudioDecodeError, OSError) as exc:
        return path, "failed", digest, None, str(exc)
    cache.put(digest, settings, array)
    return path, "computed", digest, array, None


def _init_worker() -> None:
    """One thread per worker process: N workers share N cores, not N x N threads."""
    import torch

    torch.set_num_threads(1)


def extract_features(
    paths: Sequence[str | os.PathLike],
    *,
    settings: Mapping[str, Any],
    cache: FeatureCache,
    workers: int = 1,
    checks: AudioChecks | None = None,
    callback: Callable[[int], None] | None = None,
) -> ExtractionResult:
    """Features for every file, from the cache where present, else computed and cached.

    Args:
        paths: Audio files.
        settings: From :func:`handcrafted_settings` or :func:`logmel_settings`; its
            ``"kind"`` says what is computed, the whole mapping keys the cache.
        cache: Where results are read from and written to (atomically, one per file).
        workers: Worker processes; 1 computes in this process.
        checks: Silence and minimum-length checks; a file failing one is reported and
            skipped (with ``on_problem="warn"`` it is kept with a warning).
        callback: Called with 1 after each file (for a progress bar).

    Returns:
        An :class:`ExtractionResult`; ``features`` has every path, ``None`` for failures.

    Raises:
        ParameterError: ``settings`` has an unknown kind or ``workers < 1``.
    """
    if settings.get("kind") not in KINDS:
        raise ParameterError(f"settings kind={settings.get('kind')!r} is unknown; use one of {KINDS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers={workers!r} must be a positive integer")
    settings = dict(settings)
    keys = [os.fspath(path) for path in paths]
    outcomes: dict[str, tuple] = {}

    def record(outcome: tuple) -> None:
        outcomes[outcome[0]] = outcome
        if outcome[1] == "failed":
            logger.info("skipping %s: %s", outcome[0], outcome[4])  # returned in failures, reported by the caller
        if callback is not None:
            callback(1)

    todo = list(dict.fromkeys(keys))
    if workers == 1:
        for path in todo:
            record(_extract_one(path, settings, str(cache.root), checks))
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker) as pool:
            futures = {pool.submit(_extract_one, path, settings, str(cache.root), checks): path for path in todo}
            for future in as_completed(futures):
                try:
                    record(future.result())
                except BrokenProcessPool:
                    record((futures[future], "failed", None, None, "the worker process died (out of memory?)"))
    result = ExtractionResult()
    for path in keys:
        _, status, digest, array, reason = outcomes[path]
        result.features[path] = array
        if digest is not None:
            result.digests[path] = digest
        if status == "failed":
            result.failures.append(ExtractionFailure(path, reason or "unknown"))
    result.n_cached = sum(1 for o in outcomes.values() if o[1] == "cached")
    result.n_computed = sum(1 for o in outcomes.values() if o[1] == "computed")
    return result


# --------------------------------------------------------------------------- shards


def write_shard_index(cache: FeatureCache, settings: Mapping[str, Any], shard: tuple[int, int], result: ExtractionResult) -> Path:
    """Record a shard's outcome (path, digest, status, reason) in one CSV, replaced whole by a rerun."""
    index, count = shard
    folder = cache.root / settings_digest(settings) / "shards"
    folder.mkdir(parents=True, exist_ok=True)
    failed = {failure.path: failure.reason for failure in result.failures}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "audio_digest", "status", "reason"])
    for path in result.features:
        writer.writerow([path, result.digests.get(path, ""), "failed" if path in failed else "ok", failed.get(path, "")])
    target = folder / f"shard-{index}-of-{count}.csv"
    data = buffer.getvalue().encode("utf-8")
    write_atomic(target, lambda handle: handle.write(data))
    return target
