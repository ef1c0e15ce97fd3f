"""A toy task for training tests: three classes of noisy tones, split by artist."""

from __future__ import annotations

import numpy as np
import pandas as pd

from encore.config import EncoreConfig, load_config
from encore.data.manifest import TAG_PREFIX, Manifest

SAMPLE_RATE = 8000
CLASSES = ["low", "mid", "high"]
FREQS = {"low": 220.0, "mid": 880.0, "high": 2200.0}


def tone_song(label: str, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = FREQS[label] * rng.uniform(0.95, 1.05)
    wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def make_toy(seed: int = 0) -> tuple[Manifest, dict[str, np.ndarray]]:
    """36 train, 12 val and 12 test songs; one train song unlabelled; a tag and a score."""
    rng = np.random.default_rng(seed)
    rows, waveforms = [], {}
    for split, n_artists in (("train", 4), ("val", 2), ("test", 2)):
        for a in range(n_artists):
            for label in CLASSES:
                for s in range(2):
                    tid = f"{split}-{label}-{a}-{s}"
                    waveforms[tid] = tone_song(label, rng)
                    loud = float(np.sqrt(np.mean(waveforms[tid] ** 2)))
                    rows.append(
                        {
                            "track_id": tid,
                            "path": f"/nowhere/{tid}.wav",
                            "artist": f"{split}{label}{a}",
                            "split": split,
                            "label": label,
                            "appeal": loud,
                            TAG_PREFIX + "bright": float(label == "high"),
                        }
                    )
    rows[0]["label"] = None  # an unlabelled song still trains the other heads
    manifest = Manifest(frame=pd.DataFrame(rows), label_names=CLASSES, tag_names=["bright"], regression_names=["appeal"])
    return manifest, waveforms


def toy_config(**extra) -> EncoreConfig:
    overrides = {
        "features.sample_rate": SAMPLE_RATE,
        "features.n_fft": 256,
        "features.hop_length": 128,
        "features.n_mels": 32,
        "features.f_max": 4000.0,
        "model.kwargs": {"channels": [8, 16, 16, 16], "embedding_dim": 16},
        "train.epochs": 8,
        "train.batch_size": 8,
        "train.chunk_seconds": 1.0,
        "train.chunks_per_song": 2,
        "train.lr": 0.01,
        "train.num_threads": 1,
        "train.log_every": 1000,
        "train.precision": "fp32",  # the learning thresholds are for fp32; bf16 rounding differs by CPU (test_loop)
        "train.device": "cpu",  # the same path on a GPU node; tests/train/test_cuda.py trains on the GPU
    }
    overrides.update(extra)
    return load_config(None, overrides)
