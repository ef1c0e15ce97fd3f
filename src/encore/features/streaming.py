"""Log-mel of audio that arrives in blocks, frame for frame what the whole clip gives.

A one-hour file does not fit a single STFT comfortably, and a stream has no end to wait
for. :func:`stream_log_mel` keeps the last ``n_fft - hop_length`` samples between blocks
and pads the start and the end of the stream the way ``center=True`` pads a whole clip,
so the frames it yields are the frames :class:`~encore.features.LogMelSpectrogram` computes
on the concatenated audio, whatever the block sizes.

``top_db`` floors each clip at its own peak, which a stream only knows at its end: the
streamed frames are therefore *not* floored, and :func:`log_mel_chunked` collects them and
floors at the whole clip's peak, for equality with whole-clip processing.

Example:
    >>> blocks = stream_audio("concert.flac", sample_rate=16000, block_seconds=60.0)
    >>> for frames in stream_log_mel(blocks, frontend):  # (n_mels, n) each
    ...     consume(frames)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from encore.exceptions import ParameterError
from encore.features.logmel import LogMelSpectrogram

__all__ = ["log_mel_chunked", "stream_log_mel"]


def _as_tensor(block: np.ndarray | Tensor, dtype: torch.dtype) -> Tensor:
    tensor = torch.as_tensor(np.ascontiguousarray(block) if isinstance(block, np.ndarray) else block)
    if tensor.ndim != 1:
        raise ParameterError(f"a block has shape {tuple(tensor.shape)}; stream mono blocks of shape (n_samples,)")
    return tensor.to(dtype)


def _edge(samples: Tensor, pad: int, pad_mode: str, side: str) -> Tensor:
    """The ``pad`` samples ``center=True`` adds on ``side`` of a signal whose edge is ``samples``."""
    if pad == 0:
        return samples[:0]
    if pad_mode == "constant":
        return samples.new_zeros(pad)
    if pad_mode == "replicate":
        return samples[:1].expand(pad) if side == "left" else samples[-1:].expand(pad)
    if samples.shape[0] <= pad:
        raise ParameterError(f"reflect padding needs more than n_fft // 2 = {pad} samples of audio; got {samples.shape[0]}")
    # reflect: F.pad's "reflect" excludes the edge sample itself
    return samples[1 : pad + 1].flip(0) if side == "left" else samples[-pad - 1 : -1].flip(0)


@torch.no_grad()
def stream_log_mel(blocks: Iterable[np.ndarray | Tensor], frontend: LogMelSpectrogram) -> Iterator[Tensor]:
    """Log-mel frames of a stream of mono blocks, as the whole concatenated clip would give.

    Frames are yielded as soon as their samples have arrived. Without ``top_db`` they
    equal ``frontend(whole_clip)`` frame for frame (up to float rounding); with it they
    are left unfloored, see :func:`log_mel_chunked`.

    Args:
        blocks: Consecutive mono blocks at ``frontend.sample_rate``, any lengths, e.g.
            from :func:`~encore.audio.stream_audio`.
        frontend: The log-mel module (its ``pad_mode`` may not be ``"circular"``, which
            needs the end of the stream at its start).

    Returns:
        An iterator of ``(n_mels, n)`` float tensors, in order; ``n`` varies.

    Raises:
        ParameterError: A block is not 1-D, ``pad_mode="circular"``, or (with reflect
            padding) the stream is shorter than ``n_fft // 2 + 1`` samples.
    """
    if frontend.center and frontend.pad_mode == "circular":
        raise ParameterError("pad_mode='circular' cannot be streamed; use 'constant', 'reflect' or 'replicate'")
    n_fft, hop = frontend.n_fft, frontend.hop_length
    pad = n_fft // 2 if frontend.center else 0
    dtype = frontend.window.dtype
    buffer: Tensor | None = None  # padded samples not yet consumed by a whole frame
    head: list[Tensor] = []  # the stream's first samples, until the left padding is known
    n_head = 0
    tail = torch.zeros(0, dtype=dtype)  # the stream's last pad + 1 samples, for the right padding

    def frames_of(samples: Tensor) -> tuple[Tensor | None, Tensor]:
        if samples.shape[0] < n_fft:
            return None, samples
        n_frames = 1 + (samples.shape[0] - n_fft) // hop
        used = samples[: (n_frames - 1) * hop + n_fft]
        db = frontend.to_db(frontend.mel_power(used, center=False), peak=torch.full((1, 1), -torch.inf))  # no floor yet
        return db, samples[n_frames * hop :]

    for block in blocks:
        block = _as_tensor(block, dtype)
        if block.numel() == 0:
            continue
        tail = torch.cat([tail, block])[-(pad + 1) :]
        if buffer is None:
            head.append(block)
            n_head += block.numel()
            if n_head <= pad and pad > 0:
                continue
            start = torch.cat(head)
            buffer = torch.cat([_edge(start, pad, frontend.pad_mode, "left"), start])
            head = []
        else:
            buffer = torch.cat([buffer, block])
        frames, buffer = frames_of(buffer)
        if frames is not None:
            yield frames
    if buffer is None:  # the whole stream was shorter than the padding
        if n_head == 0:
            return
        start = torch.cat(head)
        buffer = torch.cat([_edge(start, pad, frontend.pad_mode, "left"), start])
    frames, _ = frames_of(torch.cat([buffer, _edge(tail, pad, frontend.pad_mode, "right")]))
    if frames is not None:
        yield frames


def log_mel_chunked(blocks: Iterable[np.ndarray | Tensor], frontend: LogMelSpectrogram) -> Tensor:
    """The whole clip's log-mel, computed block by block, ``top_db`` floor included.

    Holds the frames (``n_mels`` floats per ``hop_length`` samples, 1/4 of the audio's
    size at the defaults) but never the whole waveform, then floors them at the clip's
    peak minus ``top_db`` as ``frontend(whole_clip)`` does.

    Args:
        blocks: Consecutive mono blocks, as for :func:`stream_log_mel`.
        frontend: The log-mel module.

    Returns:
        ``(n_mels, n_frames)`` tensor equal to ``frontend(torch.cat(blocks))``.
    """
    parts = list(stream_log_mel(blocks, frontend))
    if not parts:
        raise ParameterError(f"the stream holds no full frame (fewer than n_fft={frontend.n_fft} samples with padding)")
    db = torch.cat(parts, dim=-1)
    if frontend.top_db is not None:
        db = torch.maximum(db, db.max() - frontend.top_db)
    return db
