"""A tiny workspace on disk: tone songs in three classes, listener tags for most of them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 8000
CLASSES = {"low": 220.0, "mid": 880.0, "high": 2200.0}
N_ARTISTS = 12
SONGS_PER_ARTIST = 3
UNLABELLED_EVERY = 4  # every 4th song gets no tags: the labelling queue's songs

CONFIG = """\
features: {sample_rate: 8000, n_fft: 256, hop_length: 128, n_mels: 32, f_max: 4000.0}
model: {name: small_cnn, kwargs: {channels: [8, 16, 16], embedding_dim: 16}}
train: {epochs: 5, batch_size: 8, chunk_seconds: 1.0, chunks_per_song: 2, lr: 0.01, num_threads: 1, log_every: 1000}
baseline: {n_estimators: 30, n_jobs: 1}
labels: {classes: [low, mid, high], min_votes: 2, max_tags: 0, val_fraction: 0.2, test_fraction: 0.3}
"""


def tone(label: str, rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * CLASSES[label] * rng.uniform(0.95, 1.05) * t) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def write_catalogue(root: Path) -> dict[str, str]:
    """Songs, songs.csv, events.csv and config.yaml under ``root``; returns each song's true class."""
    rng = np.random.default_rng(0)
    (root / "songs").mkdir(parents=True)
    truth: dict[str, str] = {}
    song_rows, event_rows = [], []
    names = list(CLASSES)
    n = 0
    for a in range(N_ARTISTS):
        for s in range(SONGS_PER_ARTIST):
            label = names[(a + s) % 3]
            track_id = f"a{a:02d}s{s}"
            path = root / "songs" / f"{track_id}.wav"
            sf.write(path, tone(label, rng), SAMPLE_RATE)
            truth[track_id] = label
            song_rows.append({"path": str(path), "track_id": track_id, "artist": f"artist{a}", "title": track_id})
            for listener in range(3):
                event_rows.append(
                    {
                        "track_id": track_id,
                        "listener_id": f"l{listener}",
                        "kind": "rating",
                        "value": int(rng.integers(1, 6)),
                        "timestamp": f"2024-01-0{listener + 1}T12:00:00Z",
                    }
                )
                if n % UNLABELLED_EVERY != 0:
                    event_rows.append(
                        {
                            "track_id": track_id,
                            "listener_id": f"l{listener}",
                            "kind": "tag",
                            "value": label.upper() if listener == 0 else label,
                            "timestamp": f"2024-01-0{listener + 1}T13:00:00Z",
                        }
                    )
            n += 1
    for name, rows in (("songs.csv", song_rows), ("events.csv", event_rows)):
        with open(root / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    return truth
