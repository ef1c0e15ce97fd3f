"""Stream long audio block by block, with memory bounded by the block size.

:func:`stream_audio` decodes, downmixes and resamples a file of any length (a one-hour
recording, a DJ set) into fixed-length mono blocks, never holding more than a few blocks
at once. Concatenating the blocks gives what :func:`~encore.audio.load_audio` returns for
the same window (up to soxr's float rounding). Feed them to
:func:`~encore.features.streaming.stream_log_mel` for the log-mel of the whole file.

Example:
    >>> for block in stream_audio("concert.flac", sample_rate=16000, block_seconds=30.0):
    ...     process(block)  # (480000,) float32, the last block shorter
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import soundfile
import soxr

from encore.audio.io import open_soundfile, read_frames, window_start
from encore.audio.pyav import iter_pyav_window
from encore.audio.sources import (
    AudioSource,
    NotReadable,
    Source,
    check_sample_rate,
    check_window,
    decoder_reason,
    downmix,
    unsupported_format,
)
from encore.exceptions import AudioDecodeError, ParameterError

logger = logging.getLogger(__name__)

__all__ = ["stream_audio"]


def _soundfile_pieces(
    handle: soundfile.SoundFile, src: Source, offset: float, duration: float | None, block_frames: int
) -> Iterator[np.ndarray]:
    """``(n, channels)`` float32 pieces of the window, read ``block_frames`` at a time."""
    with handle:
        start = window_start(handle, src, offset)
        remaining = -1 if duration is None else max(1, int(round(duration * handle.samplerate)))
        while remaining != 0:
            want = block_frames if remaining < 0 else min(block_frames, remaining)
            piece = read_frames(handle, src, want, start=start)
            start = 0
            if piece.shape[0] == 0:
                break
            if remaining > 0:
                remaining -= piece.shape[0]
            yield piece


def _open_pieces(src: Source, offset: float, duration: float | None, block_seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """Native rate and an iterator of ``(n, channels)`` pieces, soundfile first, then PyAV."""
    reasons = []
    try:
        handle = open_soundfile(src)
        if handle.format == "MP3":  # libsndfile's MP3 reads go wrong after the first one stops mid-stream
            handle.close()
            raise NotReadable("MP3 is streamed with FFmpeg here (libsndfile's partial MP3 reads are wrong)")
        block_frames = max(1, int(block_seconds * handle.samplerate))
        return handle.samplerate, _soundfile_pieces(handle, src, offset, duration, block_frames)
    except NotReadable as exc:
        reasons.append(f"libsndfile: {exc}")
    try:
        native_rate, pieces = iter_pyav_window(src, offset, duration)
    except NotReadable as exc:
        reasons.append(f"FFmpeg: {decoder_reason(exc, src.name)}")
        raise unsupported_format(src.name, reasons) from exc
    return native_rate, (piece.T for piece in pieces)


def _blocks(
    src: Source, pieces: Iterator[np.ndarray], resampler: soxr.ResampleStream | None, block_samples: int
) -> Iterator[np.ndarray]:
    """Downmix, resample and re-cut the pieces into blocks of ``block_samples``."""
    pending: list[np.ndarray] = []
    n_pending = 0
    n_out = 0

    def take(n: int) -> np.ndarray:
        nonlocal pending, n_pending
        joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
        head, tail = joined[:n], joined[n:]
        pending, n_pending = ([tail] if tail.size else []), tail.size
        return np.ascontiguousarray(head, dtype=np.float32)

    try:
        for piece in pieces:
            mono = downmix(piece)
            out = resampler.resample_chunk(mono) if resampler is not None else mono
            if out.size:
                pending.append(out)
                n_pending += out.size
            while n_pending >= block_samples:
                n_out += block_samples
                yield take(block_samples)
    except NotReadable as exc:  # PyAV decoded nothing at all
        raise unsupported_format(src.name, [f"FFmpeg: {decoder_reason(exc, src.name)}"]) from exc
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            pending.append(tail)
            n_pending += tail.size
    while n_pending > 0:
        n_out += min(block_samples, n_pending)
        yield take(min(block_samples, n_pending))
    if n_out == 0:
        raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")


def stream_audio(
    source: AudioSource,
    *,
    sample_rate: int,
    block_seconds: float = 30.0,
    offset: float = 0.0,
    duration: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode audio as consecutive mono float32 blocks at ``sample_rate``.

    Reads ``block_seconds`` of the file at a time (soundfile for most formats, PyAV for
    MP3, M4A and the rest), downmixes it and resamples it with a streaming soxr resampler
    (quality ``"HQ"``), so memory stays a few blocks whatever the file's length.

    Args:
        source: Path, bytes-like buffer, or seekable binary file object.
        sample_rate: Output rate in Hz.
        block_seconds: Length of each yielded block in seconds; the last one is shorter.
        offset: Start of the window, seconds from the beginning.
        duration: Length of the window in seconds; ``None`` streams to the end.

    Returns:
        An iterator of float32 arrays, shape ``(block_samples,)``, with
        ``block_samples = round(block_seconds * sample_rate)``.

    Raises:
        ParameterError: An argument is out of range (raised at once).
        AudioDecodeError: The file is missing, empty or not audio (raised at once), or
            truncated, corrupt or shorter than ``offset`` (raised while iterating, after
            the blocks before the fault).
    """
    check_sample_rate(sample_rate)
    check_window(offset, duration)
    if isinstance(block_seconds, bool) or not isinstance(block_seconds, (int, float)) or not block_seconds > 0:
        raise ParameterError(f"block_seconds={block_seconds!r} must be a positive number of seconds")
    block_samples = max(1, int(round(block_seconds * sample_rate)))
    src = Source(source)
    src.check_not_empty()
    native_rate, pieces = _open_pieces(src, float(offset), None if duration is None else float(duration), block_seconds)
    resampler = None
    if native_rate != sample_rate:
        resampler = soxr.ResampleStream(native_rate, int(sample_rate), 1, dtype="float32", quality="HQ")
    return _blocks(src, pieces, resampler, block_samples)
