"""Audio sources (paths, buffers, file objects) and the argument checks every decoder shares.

A :class:`Source` wraps whatever the caller passed so that each decoder that tries it
(soundfile first, then PyAV) gets a fresh handle positioned at the start of the audio, and
so that every error can name the file.
"""

from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from encore.exceptions import AudioDecodeError, ParameterError

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

CONVERT_HINT = "convert it to WAV or FLAC (for example `ffmpeg -i <input> output.flac`), or check that the file really is audio"


UNNAMED = "audio data (no file name given)"
"""How messages name a buffer that came without a name (pass ``name=`` to say which upload it was)."""


def decoder_reason(exc: BaseException, name: str) -> str:
    """A decoder's own reason, without an errno or the file name it repeats.

    ``"[Errno 1094995529] Invalid data found when processing input: 'x.mp3'"`` becomes
    ``"Invalid data found when processing input"``.
    """
    text = str(getattr(exc, "error_string", None) or exc).strip()
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    for shown in (f": {name!r}", f": '{name}'", f": {name}"):
        text = text.removesuffix(shown)
    return text.rstrip(". ") or type(exc).__name__


def unsupported_format(name: str, reasons: list[str]) -> AudioDecodeError:
    """The error for audio no decoder reads: each decoder's reason, and the fix."""
    return AudioDecodeError(f"{name}: not a recognised or supported audio format ({'; '.join(reasons)}); {CONVERT_HINT}")


class NotReadable(Exception):
    """The decoder does not understand this format; try the next one."""


class Source:
    """One audio source, re-openable for each decoder that tries it.

    Args:
        source: A path, a bytes-like buffer, or a binary file object.

    Raises:
        ParameterError: ``source`` is none of those.
    """

    def __init__(self, source: AudioSource, name: str | None = None) -> None:
        self.path: str | None = None
        self.data: bytes | None = None
        self.fileobj: BinaryIO | None = None
        self.start = 0
        if isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            self.name = self.path
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self.data = bytes(source)
            self.name = UNNAMED
        elif hasattr(source, "read"):
            self.name = str(getattr(source, "name", None) or "<stream>")
            seekable = getattr(source, "seekable", None)
            if callable(seekable) and seekable():
                self.fileobj = source
                self.start = source.tell()
            else:  # soundfile and FFmpeg both need to seek
                self.data = source.read()
        else:
            raise ParameterError(f"cannot read audio from a {type(source).__name__}; pass a path, bytes, or a binary file object")
        if name:
            self.name = str(name)

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


def check_sample_rate(sample_rate: int) -> None:
    """Raise ParameterError unless ``sample_rate`` is a positive integer (Hz)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer (Hz)")


def check_window(offset: float, duration: float | None) -> None:
    """Raise ParameterError unless ``offset >= 0`` and ``duration`` is positive or None (seconds)."""
    if isinstance(offset, bool) or not isinstance(offset, (int, float, np.number)) or not math.isfinite(offset) or offset < 0:
        raise ParameterError(f"offset={offset!r} must be a finite number of seconds >= 0")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float, np.number))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise ParameterError(f"duration={duration!r} must be a positive number of seconds, or None for all")


def downmix(frames: np.ndarray) -> np.ndarray:
    """Average ``(n_samples, channels)`` frames into mono ``(n_samples,)`` float32."""
    return frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
