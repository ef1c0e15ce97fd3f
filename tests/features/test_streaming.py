"""Chunked log-mel equals whole-clip log-mel: encore.features.streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encore.exceptions import ParameterError
from encore.features import LogMelSpectrogram
from encore.features.streaming import log_mel_chunked, stream_log_mel


def _signal(n: int = 40_000, seed: int = 0) -> np.ndarray:
    """Noise under a rising envelope plus a tone, so frames differ and the peak is late."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    waveform = rng.standard_normal(n) * np.linspace(0.01, 1.0, n) + np.sin(2 * np.pi * 440 * t)
    return (0.2 * waveform).astype(np.float32)


def _split(waveform: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(waveform, np.cumsum(sizes)[:-1])


BLOCKINGS = {
    "one block": [40_000],
    "equal blocks": [1000] * 40,
    "ragged": [100, 257, 20_000, 19_643],
    "tiny first blocks": [3] * 100 + [39_700],
}


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("blocking", list(BLOCKINGS), ids=list(BLOCKINGS))
def test_streamed_frames_equal_the_whole_clip(pad_mode, blocking):
    frontend = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=160, win_length=400, pad_mode=pad_mode)
    waveform = _signal()
    whole = frontend(torch.from_numpy(waveform))
    parts = list(stream_log_mel(_split(waveform, BLOCKINGS[blocking]), frontend))
    streamed = torch.cat(parts, dim=-1)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-4, rtol=0)


def test_frames_arrive_as_blocks_arrive():
    frontend = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256)
    parts = list(stream_log_mel(_split(_signal(), [1000] * 40), frontend))
    assert len(parts) >= 39 and all(part.shape[0] == 64 for part in parts)


def test_top_db_floors_at_the_whole_clips_peak_not_each_chunks():
    # The clip grows louder: each early chunk's own peak is far below the clip's, so a
    # per-chunk floor would keep quiet frames the whole-clip floor clips away.
    frontend = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, top_db=30.0)
    waveform = _signal()
    whole = frontend(torch.from_numpy(waveform))
    chunked = log_mel_chunked(_split(waveform, [4000] * 10), frontend)
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=0)
    per_chunk = torch.cat([frontend(torch.from_numpy(c)) for c in _split(waveform, [4096] * 9 + [3136])], dim=-1)
    assert (per_chunk.min() < whole.min() - 1.0).item()  # what the naive way gets wrong


def test_uncentred_frames_and_bad_input():
    frontend = LogMelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, center=False)
    waveform = _signal(10_000)
    whole = frontend(torch.from_numpy(waveform))
    torch.testing.assert_close(log_mel_chunked(_split(waveform, [777] * 12 + [676]), frontend), whole, atol=1e-4, rtol=0)
    with pytest.raises(ParameterError, match="circular"):
        list(stream_log_mel([waveform], LogMelSpectrogram(pad_mode="circular")))
    with pytest.raises(ParameterError, match="mono"):
        list(stream_log_mel([np.zeros((2, 1000), np.float32)], frontend))
    with pytest.raises(ParameterError, match="no full frame"):
        log_mel_chunked([np.zeros(100, np.float32)], frontend)
