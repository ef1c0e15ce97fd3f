"""Helpers for the service tests: the tiny model's settings, a token, songs as WAV bytes."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

SAMPLE_RATE = 8000
TOKEN = "s3cret-token-for-tests"
MODEL_KWARGS = {
    "frontend": {"sample_rate": SAMPLE_RATE, "n_fft": 256, "hop_length": 128, "n_mels": 32, "f_max": 4000.0},
    "backbone": "small_cnn",
    "backbone_kwargs": {"channels": [8, 16, 16, 16], "embedding_dim": 16},
    "label_names": ["ambient", "jazz", "rock"],
    "tag_names": ["calm", "loud", "warm"],
    "regression_names": ["appeal"],
    "dropout": 0.0,
}


def wav_bytes(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 1500) * t) + 0.05 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, wave.astype(np.float32), sample_rate, format="WAV")
    return buffer.getvalue()
