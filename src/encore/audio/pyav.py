"""Decoding through PyAV (FFmpeg): formats libsndfile lacks, and exact MP3 windows.

PyAV seeks by timestamp and trims decoded frames to the exact sample, so a window deep in
a long file costs only that window (plus half a second of pre-roll), and a stream of
frames can be consumed block by block with bounded memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from encore.audio.sources import NotReadable, Source
from encore.exceptions import AudioDecodeError

logger = logging.getLogger(__name__)

PREROLL_SECONDS = 0.5  # seek this far before the offset, then trim exactly


# Sample formats PyAV's ``to_ndarray`` converts; others (s64, s64p from odd PCM headers)
# go through FFmpeg's own converter to float first.
_NDARRAY_FORMATS = {"u8", "u8p", "s16", "s16p", "s32", "s32p", "flt", "fltp", "dbl", "dblp"}


def frame_to_float(frame: Any) -> np.ndarray:
    """Convert one decoded ``av.AudioFrame`` to float32 planar ``(channels, samples)``."""
    if frame.format.name not in _NDARRAY_FORMATS:
        import av

        converter = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.rate)
        pieces = [piece.to_ndarray() for piece in converter.resample(frame)]
        if not pieces:
            return np.zeros((len(frame.layout.channels), 0), dtype=np.float32)
        return np.concatenate(pieces, axis=1).astype(np.float32, copy=False)
    array = frame.to_ndarray()
    n_channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        array = array.reshape(-1, n_channels).T
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(2 ** (8 * array.dtype.itemsize - 1))
    return array.astype(np.float32, copy=False)


def _frame_position(frame: Any, origin: float, native_rate: int) -> int:
    """Sample index of a decoded frame's first sample, from its timestamp (0 if none)."""
    if frame.pts is None or frame.time_base is None:
        return 0
    return int(round((float(frame.pts * frame.time_base) - origin) * native_rate))


def open_pyav(src: Source) -> tuple[Any, Any]:
    """Open ``src`` with PyAV and return ``(container, first audio stream)``.

    Raises:
        NotReadable: FFmpeg does not recognise it, or it has no audio stream.
        AudioDecodeError: It has an audio stream in a codec FFmpeg cannot decode.
    """
    import av  # imported lazily: only needed for the formats soundfile cannot read

    try:
        container = av.open(src.open(), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise NotReadable(str(exc)) from exc
    if not container.streams.audio:
        container.close()
        raise NotReadable("no audio stream in the container")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # FFmpeg parsed the container but has no decoder
        kind = getattr(container.format, "name", "unknown")
        container.close()
        raise AudioDecodeError(
            f"{src.name}: unsupported codec: the audio in this {kind!r} container uses a codec "
            "this FFmpeg build cannot decode; convert it with a full FFmpeg install "
            "(`ffmpeg -i <input> output.flac`)"
        )
    return container, stream


def iter_pyav_window(src: Source, offset: float, duration: float | None) -> tuple[int, Iterator[np.ndarray]]:
    """Open ``src`` and return its native rate and an iterator over the window's samples.

    The iterator yields float32 ``(channels, n)`` pieces, exactly the samples from
    ``offset`` for ``duration`` seconds (to the end if ``None``), and closes the file when
    it finishes.

    Raises:
        NotReadable: FFmpeg cannot open it (raised now) or decodes nothing (on iteration).
        AudioDecodeError: ``offset`` is past the end (on iteration).
    """
    container, stream = open_pyav(src)
    native_rate = stream.codec_context.sample_rate or stream.rate
    if not native_rate:
        container.close()
        raise NotReadable("the audio stream has no sample rate")
    return int(native_rate), _pieces(src, container, stream, int(native_rate), offset, duration)


def _pieces(
    src: Source, container: Any, stream: Any, native_rate: int, offset: float, duration: float | None
) -> Iterator[np.ndarray]:
    import av

    start = int(round(offset * native_rate))
    stop = None if duration is None else start + max(1, int(round(duration * native_rate)))
    with container:
        if offset > PREROLL_SECONDS and stream.time_base:
            # Land a little before the offset: codecs with overlapping frames and bit
            # reservoirs (AAC, MP3, Opus) need a frame or two of history to decode the
            # target exactly. The samples are then trimmed to the offset by timestamp.
            target = int((offset - PREROLL_SECONDS) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                container.seek(0, stream=stream)
        # A positive start time (MP3's encoder delay, MPEG-TS, some MP4s) is the stream's
        # zero; a negative one marks encoder priming, which belongs before zero.
        origin = 0.0
        if stream.start_time is not None and stream.time_base and stream.start_time > 0:
            origin = float(stream.start_time * stream.time_base)
        position: int | None = None  # sample index of the next decoded frame
        channels: int | None = None  # the first frame's; later frames are matched to it
        n_yielded = 0
        try:
            for frame in container.decode(stream):
                if position is None:  # anchor on the first frame's timestamp
                    position = _frame_position(frame, origin, native_rate)
                samples = frame_to_float(frame)
                if channels is None:
                    channels = samples.shape[0]
                elif samples.shape[0] != channels:  # the layout changed mid-stream (a corrupt header)
                    samples = np.broadcast_to(samples.mean(axis=0, keepdims=True), (channels, samples.shape[1]))
                frame_start, position = position, position + samples.shape[1]
                lo = max(start - frame_start, 0)
                hi = samples.shape[1] if stop is None else min(stop - frame_start, samples.shape[1])
                if hi > lo:
                    n_yielded += hi - lo
                    yield samples[:, lo:hi]
                if stop is not None and position >= stop:
                    break
        except av.FFmpegError as exc:
            if not n_yielded:
                raise NotReadable(str(exc)) from exc
            logger.warning("%s: decoding stopped early (%s); keeping what was decoded", src.name, exc)
    if not n_yielded:
        if offset > 0:
            length = f" ({position / native_rate:.3f} s)" if position else ""
            raise AudioDecodeError(
                f"{src.name}: the window starts at {offset} s, beyond the end of the audio{length}; use a smaller offset"
            )
        raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")


def read_pyav(src: Source, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Read a window with PyAV.

    Returns:
        ``(frames, channels)`` float32 array and its native sample rate in Hz.
    """
    native_rate, pieces = iter_pyav_window(src, offset, duration)
    return np.concatenate(list(pieces), axis=1).T, native_rate


def pyav_duration(src: Source) -> float:
    """Duration from the stream or container header, else by decoding (seconds)."""
    import av

    container, stream = open_pyav(src)
    with container:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return container.duration / av.time_base
        rate = stream.codec_context.sample_rate
        try:
            n_samples = sum(frame.samples for frame in container.decode(stream))
        except av.FFmpegError as exc:
            raise NotReadable(str(exc)) from exc
        if not rate or n_samples == 0:
            raise NotReadable("the audio stream has no samples")
        return n_samples / rate
