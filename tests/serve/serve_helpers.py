"""Helpers for the service tests: the tiny model's settings, a token, songs as WAV bytes."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from tiny_cnn import SAMPLE_RATE, tiny_model_kwargs

TOKEN = "s3cret-token-for-tests"
MODEL_KWARGS = tiny_model_kwargs()


def wav_bytes(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 1500) * t) + 0.05 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, wave.astype(np.float32), sample_rate, format="WAV")
    return buffer.getvalue()
