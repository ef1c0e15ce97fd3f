"""Checks on a decoded waveform: all-silent, or too short for a model's chunk.

Whether such audio is an error depends on the caller: training data should not hold a
silent song, while a service may prefer to answer with a warning. :class:`AudioChecks`
says which checks run and whether a failure raises or logs.

Example:
    >>> checks = AudioChecks(min_seconds=3.0, on_problem="warn")
    >>> waveform = load_audio("song.mp3", sample_rate=16000, checks=checks)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from encore.exceptions import AudioDecodeError, ParameterError

logger = logging.getLogger(__name__)

__all__ = ["AudioChecks", "check_waveform"]


@dataclass(frozen=True)
class AudioChecks:
    """Which checks :func:`check_waveform` runs, and what a failure does.

    Args:
        min_seconds: Audio shorter than this is "too short for a chunk" (0 disables).
        silence_db: Audio whose peak is below this level (dB relative to full scale) is
            "all silent"; ``None`` disables the check.
        on_problem: ``"error"`` raises :class:`AudioDecodeError`; ``"warn"`` logs a
            warning and keeps the audio.
    """

    min_seconds: float = 0.0
    silence_db: float | None = -80.0
    on_problem: Literal["error", "warn"] = "error"

    def __post_init__(self) -> None:
        if not isinstance(self.min_seconds, (int, float)) or not math.isfinite(self.min_seconds) or self.min_seconds < 0:
            raise ParameterError(f"min_seconds={self.min_seconds!r} must be a finite number of seconds >= 0")
        if self.silence_db is not None and (
            not isinstance(self.silence_db, (int, float)) or not math.isfinite(self.silence_db) or self.silence_db >= 0
        ):
            raise ParameterError(f"silence_db={self.silence_db!r} must be a negative level in dB, or None to disable")
        if self.on_problem not in ("error", "warn"):
            raise ParameterError(f"on_problem={self.on_problem!r} must be 'error' or 'warn'")


def check_waveform(waveform: np.ndarray, *, sample_rate: int, checks: AudioChecks, name: str = "<audio>") -> None:
    """Raise or warn, as ``checks`` says, if the waveform is all silent or too short.

    Args:
        waveform: Decoded audio, shape ``(n_samples,)`` or ``(channels, n_samples)``.
        sample_rate: Its sample rate in Hz.
        checks: What to check and what a failure does.
        name: The file, for the message.

    Raises:
        AudioDecodeError: A check failed and ``checks.on_problem == "error"``.
    """
    problems = []
    seconds = waveform.shape[-1] / sample_rate
    if checks.min_seconds > 0 and seconds < checks.min_seconds:
        problems.append(
            f"too short for a chunk ({seconds:.3f} s < min_seconds={checks.min_seconds:g} s); "
            "use a longer file or a shorter chunk"
        )
    if checks.silence_db is not None and waveform.size:
        peak = float(np.max(np.abs(waveform)))
        level = 20.0 * math.log10(peak) if peak > 0 else -math.inf
        if level < checks.silence_db:
            shown = "-inf" if level == -math.inf else f"{level:.1f}"
            problems.append(
                f"all silent (peak {shown} dBFS < silence_db={checks.silence_db:g}); check the file, or lower silence_db"
            )
    if not problems:
        return
    message = f"{name}: " + "; ".join(problems)
    if checks.on_problem == "error":
        raise AudioDecodeError(message)
    logger.warning("%s", message)
