"""Cut waveforms into fixed-length chunks for training and inference.

Models see fixed-length chunks (a few seconds); a song is scored by running every chunk
and pooling. :func:`chunk_waveform` makes the deterministic cover used at evaluation and
inference time, :func:`random_crop` the random window used in training.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive integer (samples)")
    return int(value)


def _pad_to(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad the last axis of ``waveform`` at the end up to ``n_samples``."""
    missing = n_samples - waveform.shape[-1]
    if missing <= 0:
        return waveform
    pad = [(0, 0)] * (waveform.ndim - 1) + [(0, missing)]
    return np.pad(waveform, pad)


def chunk_waveform(
    waveform: np.ndarray,
    *,
    chunk_samples: int,
    hop_samples: int | None = None,
    min_fraction: float = 0.5,
) -> np.ndarray:
    """Cut a waveform into fixed-length chunks along its last axis.

    Chunks start every ``hop_samples`` (no overlap by default). A trailing partial chunk
    is kept, zero-padded, if its real audio is at least ``min_fraction`` of a chunk, and
    dropped otherwise; a waveform shorter than one chunk always gives one zero-padded
    chunk, so non-empty input never gives zero chunks.

    Args:
        waveform: Audio, shape ``(n_samples,)`` or ``(channels, n_samples)``.
        chunk_samples: Length of each chunk in samples.
        hop_samples: Distance between chunk starts in samples; ``None`` means
            ``chunk_samples``.
        min_fraction: Smallest part of a chunk, in [0, 1], that a trailing partial
            chunk must fill to be kept.

    Returns:
        Array of the input's dtype, shape ``(n_chunks, chunk_samples)``, or
        ``(n_chunks, channels, chunk_samples)`` for 2-D input. Empty input gives
        ``n_chunks = 0``.

    Raises:
        ParameterError: A length is not a positive integer, ``min_fraction`` is outside
            [0, 1], or ``waveform`` is not 1-D or 2-D.

    Example:
        >>> chunk_waveform(np.ones(25_000, np.float32), chunk_samples=10_000).shape
        (3, 10000)
    """
    chunk_samples = _check_positive_int("chunk_samples", chunk_samples)
    hop_samples = chunk_samples if hop_samples is None else _check_positive_int("hop_samples", hop_samples)
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ParameterError(f"min_fraction={min_fraction!r} must be between 0 and 1")
    waveform = np.asarray(waveform)
    if waveform.ndim not in (1, 2):
        raise ParameterError(f"waveform has shape {waveform.shape}; expected (n_samples,) or (channels, n_samples)")
    n_samples = waveform.shape[-1]
    lead = waveform.shape[:-1]
    if n_samples == 0:
        return np.zeros((0, *lead, chunk_samples), dtype=waveform.dtype)
    if n_samples <= chunk_samples:
        return _pad_to(waveform, chunk_samples)[None]

    starts = list(range(0, n_samples - chunk_samples + 1, hop_samples))
    tail_start = starts[-1] + hop_samples
    if tail_start < n_samples and n_samples - tail_start >= min_fraction * chunk_samples:
        starts.append(tail_start)
    padded = _pad_to(waveform, starts[-1] + chunk_samples)
    windows = np.lib.stride_tricks.sliding_window_view(padded, chunk_samples, axis=-1)
    # windows: (*lead, n_positions, chunk_samples) -> (n_chunks, *lead, chunk_samples)
    chunks = np.moveaxis(windows[..., starts, :], -2, 0)
    return np.ascontiguousarray(chunks)


def random_crop(
    waveform: np.ndarray,
    chunk_samples: int,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Take one random window of ``chunk_samples`` from the last axis of a waveform.

    Every start position is equally likely; a waveform shorter than the window is
    returned zero-padded at the end.

    Args:
        waveform: Audio, shape ``(n_samples,)`` or ``(channels, n_samples)``.
        chunk_samples: Window length in samples.
        rng: A numpy Generator (reuse one per worker), a seed, or ``None`` for fresh
            entropy.

    Returns:
        A copy, shape ``(chunk_samples,)`` or ``(channels, chunk_samples)``.

    Raises:
        ParameterError: ``chunk_samples`` is not a positive integer.
    """
    chunk_samples = _check_positive_int("chunk_samples", chunk_samples)
    waveform = np.asarray(waveform)
    n_samples = waveform.shape[-1]
    if n_samples <= chunk_samples:
        return _pad_to(waveform, chunk_samples).copy()
    rng = np.random.default_rng(rng)
    start = int(rng.integers(0, n_samples - chunk_samples + 1))
    return waveform[..., start : start + chunk_samples].copy()
