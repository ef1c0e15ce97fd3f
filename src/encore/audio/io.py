"""Decode audio files and buffers into float32 waveforms at a fixed sample rate.

Every piece of audio that enters encore goes through :func:`load_audio` (or, for audio too
long to hold, :func:`~encore.audio.stream.stream_audio`): training data, evaluation, the CLI
and the HTTP service. soundfile (libsndfile) is tried first because it reads the common
formats (WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, AU) quickly and seeks to a window without
decoding the rest; anything it cannot read (M4A/AAC, WMA, ...) falls back to PyAV (FFmpeg).
MP3 windows that do not start at 0 are read with PyAV too: libsndfile 1.2's MP3 reader
returns wrong samples after a seek, and after any read that stops mid-stream, in VBR
files. Resampling uses soxr's high-quality filter and only happens when rates differ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import soundfile
import soxr

from encore.audio.checks import AudioChecks, check_waveform
from encore.audio.pyav import pyav_duration, read_pyav
from encore.audio.sources import (
    CONVERT_HINT,
    AudioSource,
    NotReadable,
    Source,
    decoder_reason,
    check_sample_rate,
    check_window,
    downmix,
    unsupported_format,
)
from encore.exceptions import AudioDecodeError

logger = logging.getLogger(__name__)

__all__ = ["AudioSource", "audio_duration", "load_audio"]

# A file whose decoded length falls short of its header's by more than this is truncated.
_TRUNCATION_TOLERANCE_SECONDS = 0.5
_TRUNCATION_TOLERANCE_FRACTION = 0.02


def soundfile_reason(exc: Exception) -> str:
    """libsndfile's own reason ("Format not recognised"), without the handle's repr.

    Its "File does not exist or is not a regular file" also comes for an existing file
    whose MP3 frames it cannot parse; every caller has checked the file exists, so that
    reads as what it means there.
    """
    text = str(getattr(exc, "error_string", None) or exc).rstrip(". ")
    if text.startswith("File does not exist or is not a regular file"):
        return "format not recognised"
    return text


def open_soundfile(src: Source) -> soundfile.SoundFile:
    """Open ``src`` with libsndfile, or raise :class:`NotReadable` so PyAV is tried.

    Raises:
        NotReadable: libsndfile does not read it, reports no samples (truncated Ogg), or
            it is an MP3 (see the module docstring; the caller decides).
        AudioDecodeError: The header says the file is longer than its data (truncated WAV).
    """
    try:
        handle = soundfile.SoundFile(src.open())
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise NotReadable(soundfile_reason(exc)) from exc
    if handle.frames <= 0 and handle.format in ("OGG", "MP3"):
        handle.close()  # Ogg/MP3 lengths come from the last page or Xing header; let FFmpeg look
        raise NotReadable("libsndfile found no samples")
    info = handle.extra_info if handle.format in ("WAV", "WAVEX", "RF64", "AIFF") else ""
    if "should be" in info:  # libsndfile's note that a chunk runs past the end of the file
        handle.close()
        raise AudioDecodeError(
            f"{src.name}: file is truncated (its header promises more data than the file holds); re-copy or re-encode it"
        )
    return handle


def window_start(handle: soundfile.SoundFile, src: Source, offset: float) -> int:
    """The frame at ``offset`` seconds, or AudioDecodeError when that is beyond the end of the audio."""
    start = int(round(offset * handle.samplerate))
    if start >= handle.frames:
        raise AudioDecodeError(
            f"{src.name}: the window starts at {offset} s, beyond the end of the audio "
            f"({handle.frames / handle.samplerate:.3f} s); use a smaller offset"
        )
    return start


def read_frames(handle: soundfile.SoundFile, src: Source, n_frames: int, *, start: int = 0) -> np.ndarray:
    """``(n, channels)`` float32 frames read with libsndfile (from ``start`` when it is not 0; ``n_frames=-1``: all).

    Raises:
        AudioDecodeError: libsndfile fails part-way (a truncated or corrupt file).
    """
    try:
        if start > 0:
            handle.seek(start)
        return handle.read(frames=n_frames, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise AudioDecodeError(
            f"{src.name}: decoding failed part-way ({soundfile_reason(exc)}); the file is truncated or corrupt"
        ) from exc


def _read_soundfile(src: Source, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Read a window with soundfile.

    Returns:
        ``(frames, channels)`` float32 array and its native sample rate in Hz.
    """
    handle = open_soundfile(src)
    with handle:
        native_rate, total = handle.samplerate, handle.frames
        if total <= 0:
            raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")
        start = window_start(handle, src, offset)
        if handle.format == "MP3" and start > 0:
            raise NotReadable("MP3 windows are read with FFmpeg here (libsndfile mis-seeks in VBR MP3)")
        n_frames = -1 if duration is None else max(1, int(round(duration * native_rate)))
        frames = read_frames(handle, src, n_frames, start=start)
    if frames.shape[0] == 0:
        raise AudioDecodeError(f"{src.name}: audio has zero length (no samples)")
    expected = total - start if n_frames < 0 else min(n_frames, total - start)
    missing = expected - frames.shape[0]
    if missing > max(_TRUNCATION_TOLERANCE_SECONDS * native_rate, _TRUNCATION_TOLERANCE_FRACTION * expected):
        raise AudioDecodeError(
            f"{src.name}: file is truncated ({frames.shape[0] / native_rate:.2f} s decoded of the "
            f"{expected / native_rate:.2f} s its header promises); re-copy or re-encode it"
        )
    return frames, native_rate


def _decode(src: Source, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Try soundfile, then PyAV; raise AudioDecodeError naming both reasons."""
    src.check_not_empty()
    decoders: list[tuple[str, Callable[[Source, float, float | None], tuple[np.ndarray, int]]]] = [
        ("libsndfile", _read_soundfile),
        ("FFmpeg", read_pyav),
    ]
    reasons = []
    for name, decoder in decoders:
        try:
            return decoder(src, offset, duration)
        except NotReadable as exc:
            logger.debug("%s: %s cannot read it: %s", src.name, name, exc)
            reasons.append(f"{name}: {decoder_reason(exc, src.name)}")
    raise unsupported_format(src.name, reasons)


def load_audio(
    source: AudioSource,
    *,
    sample_rate: int,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    checks: AudioChecks | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Decode audio into a float32 waveform at ``sample_rate``.

    soundfile is tried first and reads only the requested window; formats it cannot read,
    and MP3 windows, are decoded with PyAV, which seeks to the window too. The window is
    cut at the file's own rate, then resampled with ``soxr`` (quality ``"HQ"``) only if
    that rate differs from ``sample_rate``.

    Args:
        source: Path, bytes-like buffer, or seekable binary file object (a non-seekable
            one is read into memory first).
        sample_rate: Output rate in Hz.
        mono: Average the channels into one.
        offset: Start of the window, seconds from the beginning.
        duration: Length of the window in seconds; ``None`` reads to the end. A window
            running past the end is simply shorter.
        checks: Silence and minimum-length checks on the result, raising or warning as
            they say; ``None`` runs none.
        name: What messages call the audio (an upload's file name); default the path,
            a file object's ``name``, or "audio data (no file name given)" for bytes.

    Returns:
        float32 waveform in [-1, 1] (decoded full scale), shape ``(n_samples,)`` if
        ``mono`` else ``(channels, n_samples)``.

    Raises:
        ParameterError: ``sample_rate``, ``offset`` or ``duration`` is out of range.
        AudioDecodeError: The file is missing, empty, truncated, not audio (or an
            unsupported codec), has no samples, ``offset`` is past its end, or a check
            failed. The message names the file (or ``name``) and the reason.

    Example:
        >>> waveform = load_audio("song.mp3", sample_rate=16000, offset=30.0, duration=10.0)
        >>> waveform.shape
        (160000,)
    """
    check_sample_rate(sample_rate)
    check_window(offset, duration)
    src = Source(source, name=name)
    frames, native_rate = _decode(src, float(offset), None if duration is None else float(duration))
    if mono:
        frames = downmix(frames)
    if native_rate != sample_rate:
        frames = soxr.resample(frames, native_rate, int(sample_rate), quality="HQ")
    waveform = np.ascontiguousarray(frames if mono else frames.T, dtype=np.float32)
    if checks is not None:
        check_waveform(waveform, sample_rate=int(sample_rate), checks=checks, name=src.name)
    return waveform


def audio_duration(source: AudioSource, *, name: str | None = None) -> float:
    """Duration of the audio in seconds, read from the header where possible.

    Args:
        source: Path, bytes-like buffer, or seekable binary file object.
        name: What messages call the audio (an upload's file name), as in :func:`load_audio`.

    Returns:
        Duration in seconds at the file's own sample rate.

    Raises:
        AudioDecodeError: The source is missing, empty or not readable audio.
    """
    src = Source(source, name=name)
    src.check_not_empty()
    reasons = []
    try:
        info = soundfile.info(src.open())
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
        reasons.append("libsndfile: no frames in the header")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        reasons.append(f"libsndfile: {soundfile_reason(exc)}")
    try:
        return pyav_duration(src)
    except NotReadable as exc:
        reasons.append(f"FFmpeg: {decoder_reason(exc, src.name)}")
    raise AudioDecodeError(f"{src.name}: cannot read a duration ({'; '.join(reasons)}); {CONVERT_HINT}")
