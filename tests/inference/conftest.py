"""Fixtures for the inference tests: a tiny CNN run and short songs on disk."""

from __future__ import annotations

import pytest
import soundfile as sf
from inference_helpers import SAMPLE_RATE, build_tiny_model, song, tiny_card

from encore.models.checkpoint import save_checkpoint


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    save_checkpoint(run / "checkpoint.pt", build_tiny_model(), tiny_card())
    return run


@pytest.fixture(scope="session")
def song_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    paths = []
    for i, seconds in enumerate((2.5, 4.0, 1.2)):
        path = folder / f"song{i}.wav"
        sf.write(path, song(seconds, seed=i), SAMPLE_RATE)
        paths.append(path)
    return paths
