"""Decode audio files and buffers into float32 waveforms at a fixed sample rate.

Every piece of audio that enters encore goes through :func:`load_audio`: training data,
evaluation, the CLI and the HTTP service. soundfile (libsndfile) is tried first because it
reads the common formats (WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, AU) quickly and can seek to
a window without decoding the rest; anything it cannot read (M4A/AAC, WMA, ...) falls back to
PyAV (FFmpeg). Resampling uses soxr's high-quality filter and only happens when rates differ.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile
import soxr

from encore.exceptions import AudioDecodeError, ParameterError

logger = logging.getLogger(__name__)

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

_PREROLL_SECONDS = 0.5  # PyAV seeks this far before the offset, then trims exactly
_CONVERT_HINT = (
    "convert it to WAV or FLAC (for example `ffmpeg -i <input> output.flac`), "
    "or check that the file really is audio"
)


# --------------------------------------------------------------------------- sources


class _Source:
    """One audio source, re-openable for each decoder that tries it.

    Args:
        source: A path, a bytes-like buffer, or a binary file object.
    """

    def __init__(self, source: AudioSource) -> None:
        self.path: str | None = None
        self.data: bytes | None = None
        self.fileobj: BinaryIO | None = None
        self.start = 0
        if isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            self.name = self.path
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self.data = bytes(source)
            self.name = "<bytes>"
        elif hasattr(source, "read"):
            self.name = str(getattr(source, "name", None) or "<stream>")
            seekable = getattr(source, "seekable", None)
            if callable(seekable) and seekable():
                self.fileobj = source
                self.start = source.tell()
            else:  # soundfile and FFmpeg both need to seek
                self.data = source.read()
        else:
            raise ParameterError(
                f"source of type {type(source).__name__} is not supported; pass a path, "
                "bytes, or a binary file object"
            )

    def check_not_empty(self) -> None:
        """Raise AudioDecodeError for a missing, non-regular or zero-byte source."""
        if self.path is not None:
            path = Path(self.path)
            if not path.exists():
                raise AudioDecodeError(f"{self.name}: file not found; check the path")
            if not path.is_file():
                raise AudioDecodeError(f"{self.name}: not a regular file (is it a folder?)")
            if path.stat().st_size == 0:
                raise AudioDecodeError(f"{self.name}: file is empty (0 bytes)")
        elif self.data is not None:
            if len(self.data) == 0:
                raise AudioDecodeError(f"{self.name}: buffer is empty (0 bytes)")
        else:
            assert self.fileobj is not None
            end = self.fileobj.seek(0, io.SEEK_END)
            self.fileobj.seek(self.start)
            if end - self.start <= 0:
                raise AudioDecodeError(f"{self.name}: stream is empty (0 bytes)")

    def open(self) -> str | BinaryIO:
        """A fresh handle positioned at the start of the audio."""
        if self.path is not None:
            return self.path
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.fileobj is not None
        self.fileobj.seek(self.start)
        return self.fileobj


# --------------------------------------------------------------------------- validation


def _check_sample_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer (Hz)")


def _check_window(offset: float, duration: float | None) -> None:
    if not isinstance(offset, (int, float, np.number)) or not math.isfinite(offset) or offset < 0:
        raise ParameterError(f"offset={offset!r} must be a finite number of seconds >= 0")
    if duration is not None and (
        not isinstance(duration, (int, float, np.number)) or not math.isfinite(duration) or duration <= 0
    ):
        raise ParameterError(f"duration={duration!r} must be a positive number of seconds, or None for all")


# --------------------------------------------------------------------------- decoders


class _NotReadable(Exception):
    """The decoder does not understand this format; try the next one."""


def _soundfile_reason(exc: Exception) -> str:
    """libsndfile's own reason ("Format not recognised."), without the handle's repr."""
    return str(getattr(exc, "error_string", None) or exc)


def _read_soundfile(
    src: _Source, offset: float, duration: float | None
) -> tuple[np.ndarray, int]:
    """Read a window with soundfile.

    Returns:
        ``(frames, channels)`` float32 array and its native sample rate in Hz.
    """
    try:
        handle = soundfile.SoundFile(src.open())
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _NotReadable(_soundfile_reason(exc)) from exc
    with handle:
        native_rate = handle.samplerate
        total = handle.frames
        if total <= 0:
            raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")
        start = int(round(offset * native_rate))
        if start >= total:
            raise AudioDecodeError(
                f"{src.name}: offset={offset} s is beyond the end of the audio "
                f"({total / native_rate:.3f} s); use a smaller offset"
            )
        n_frames = -1 if duration is None else max(1, int(round(duration * native_rate)))
        try:
            if handle.format == "MP3":
                # libsndfile 1.2's MP3 reader returns wrong samples after a seek, and after
                # any read that stops mid-stream, for VBR files; one read from the start
                # is right. MP3 decodes at hundreds of times real time, so read up to the
                # end of the window and cut.
                stop = -1 if n_frames < 0 else start + n_frames
                frames = handle.read(frames=stop, dtype="float32", always_2d=True)
                frames = frames[start:].copy() if start > 0 else frames
            else:
                if start > 0:
                    handle.seek(start)
                frames = handle.read(frames=n_frames, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(
                f"{src.name}: decoding failed part-way ({_soundfile_reason(exc)}); the file may be corrupt"
            ) from exc
    if frames.shape[0] == 0:  # the header's frame count can overstate an MP3's length
        if start > 0:
            raise AudioDecodeError(
                f"{src.name}: offset={offset} s is beyond the end of the audio; use a smaller offset"
            )
        raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")
    return frames, native_rate


def _frame_to_float(frame) -> np.ndarray:  # noqa: ANN001 - av.AudioFrame
    """Convert one decoded PyAV frame to float32 planar ``(channels, samples)``."""
    array = frame.to_ndarray()
    n_channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        array = array.reshape(-1, n_channels).T
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(2 ** (8 * array.dtype.itemsize - 1))
    return array.astype(np.float32, copy=False)


def _frame_position(frame, origin: float, native_rate: int) -> int:  # noqa: ANN001 - av.AudioFrame
    """Sample index of a decoded frame's first sample, from its timestamp (0 if none)."""
    if frame.pts is None or frame.time_base is None:
        return 0
    return int(round((float(frame.pts * frame.time_base) - origin) * native_rate))


def _open_pyav(src: _Source):
    """Open ``src`` with PyAV and return ``(container, first audio stream)``."""
    import av  # imported lazily: only needed for the formats soundfile cannot read

    try:
        container = av.open(src.open(), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _NotReadable(str(exc)) from exc
    if not container.streams.audio:
        container.close()
        raise _NotReadable("no audio stream in the container")
    return container, container.streams.audio[0]


def _read_pyav(src: _Source, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Read a window with PyAV (FFmpeg), for formats libsndfile lacks (M4A/AAC, ...).

    Returns:
        ``(frames, channels)`` float32 array and its native sample rate in Hz.
    """
    import av

    container, stream = _open_pyav(src)
    with container:
        native_rate = stream.codec_context.sample_rate or stream.rate
        if not native_rate:
            raise _NotReadable("the audio stream has no sample rate")
        start = int(round(offset * native_rate))
        stop = None if duration is None else start + max(1, int(round(duration * native_rate)))
        if offset > _PREROLL_SECONDS and stream.time_base:
            # Land a little before the offset: codecs with overlapping frames (AAC, MP3,
            # Opus) need a frame or two of history to decode the target exactly. The
            # samples are then trimmed to the offset by their timestamps.
            target = int((offset - _PREROLL_SECONDS) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                container.seek(0, stream=stream)
        # A positive start time (MPEG-TS, some MP4s) is the stream's zero; a negative one
        # marks encoder priming, which belongs before zero and is trimmed.
        origin = 0.0
        if stream.start_time is not None and stream.time_base and stream.start_time > 0:
            origin = float(stream.start_time * stream.time_base)
        pieces: list[np.ndarray] = []
        position: int | None = None  # sample index of the next decoded frame
        try:
            for frame in container.decode(stream):
                if position is None:  # anchor on the first frame's timestamp
                    position = _frame_position(frame, origin, native_rate)
                samples = _frame_to_float(frame)
                frame_start, position = position, position + samples.shape[1]
                lo = max(start - frame_start, 0)
                hi = samples.shape[1] if stop is None else min(stop - frame_start, samples.shape[1])
                if hi > lo:
                    pieces.append(samples[:, lo:hi])
                if stop is not None and position >= stop:
                    break
        except av.FFmpegError as exc:
            if not pieces:
                raise _NotReadable(str(exc)) from exc
            logger.warning("%s: decoding stopped early (%s); keeping what was decoded", src.name, exc)
    if not pieces:
        if offset > 0:
            length = f" ({position / native_rate:.3f} s)" if position else ""
            raise AudioDecodeError(
                f"{src.name}: offset={offset} s is beyond the end of the audio{length}; use a smaller offset"
            )
        raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")
    return np.concatenate(pieces, axis=1).T, int(native_rate)


def _decode(src: _Source, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Try soundfile, then PyAV; raise AudioDecodeError naming both reasons."""
    src.check_not_empty()
    decoders: list[tuple[str, Callable[[_Source, float, float | None], tuple[np.ndarray, int]]]] = [
        ("soundfile", _read_soundfile),
        ("PyAV", _read_pyav),
    ]
    reasons = []
    for name, decoder in decoders:
        try:
            return decoder(src, offset, duration)
        except _NotReadable as exc:
            logger.debug("%s: %s cannot read it: %s", src.name, name, exc)
            reasons.append(f"{name}: {exc}")
    raise AudioDecodeError(
        f"{src.name}: not a recognised or supported audio format ({'; '.join(reasons)}); {_CONVERT_HINT}"
    )


# --------------------------------------------------------------------------- public API


def load_audio(
    source: AudioSource,
    *,
    sample_rate: int,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode audio into a float32 waveform at ``sample_rate``.

    soundfile is tried first and reads only the requested window; formats it cannot read
    are decoded with PyAV. The window is cut at the file's own rate, then resampled with
    ``soxr`` (quality ``"HQ"``) only if that rate differs from ``sample_rate``.

    Args:
        source: Path, bytes-like buffer, or seekable binary file object (a non-seekable
            one is read into memory first).
        sample_rate: Output rate in Hz.
        mono: Average the channels into one.
        offset: Start of the window, seconds from the beginning.
        duration: Length of the window in seconds; ``None`` reads to the end. A window
            running past the end is simply shorter.

    Returns:
        float32 waveform in [-1, 1] (decoded full scale), shape ``(n_samples,)`` if
        ``mono`` else ``(channels, n_samples)``.

    Raises:
        ParameterError: ``sample_rate``, ``offset`` or ``duration`` is out of range.
        AudioDecodeError: The file is missing, empty, not audio (or an unsupported
            format), has no samples, or ``offset`` is past its end. The message names the
            file (``"<bytes>"`` for a buffer) and the reason.

    Example:
        >>> waveform = load_audio("song.mp3", sample_rate=16000, offset=30.0, duration=10.0)
        >>> waveform.shape
        (160000,)
    """
    _check_sample_rate(sample_rate)
    _check_window(offset, duration)
    src = _Source(source)
    frames, native_rate = _decode(src, float(offset), None if duration is None else float(duration))
    if mono:
        frames = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    if native_rate != sample_rate:
        frames = soxr.resample(frames, native_rate, int(sample_rate), quality="HQ")
    waveform = frames if mono else frames.T
    return np.ascontiguousarray(waveform, dtype=np.float32)


def audio_duration(source: AudioSource) -> float:
    """Duration of the audio in seconds, read from the header where possible.

    Args:
        source: Path, bytes-like buffer, or seekable binary file object.

    Returns:
        Duration in seconds at the file's own sample rate.

    Raises:
        AudioDecodeError: The source is missing, empty or not readable audio.
    """
    src = _Source(source)
    src.check_not_empty()
    reasons = []
    try:
        info = soundfile.info(src.open())
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
        reasons.append("soundfile: no frames in the header")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        reasons.append(f"soundfile: {_soundfile_reason(exc)}")
    try:
        return _pyav_duration(src)
    except _NotReadable as exc:
        reasons.append(f"PyAV: {exc}")
    raise AudioDecodeError(
        f"{src.name}: cannot read a duration ({'; '.join(reasons)}); {_CONVERT_HINT}"
    )


def _pyav_duration(src: _Source) -> float:
    """Duration from the stream or container header, else by decoding (seconds)."""
    import av

    container, stream = _open_pyav(src)
    with container:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return container.duration / av.time_base
        rate = stream.codec_context.sample_rate
        try:
            n_samples = sum(frame.samples for frame in container.decode(stream))
        except av.FFmpegError as exc:
            raise _NotReadable(str(exc)) from exc
        if not rate or n_samples == 0:
            raise _NotReadable("the audio stream has no samples")
        return n_samples / rate

