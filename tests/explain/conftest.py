"""The tiny tone CNN, trained once per session."""

from __future__ import annotations

import pytest
from tone_songs import train_tone_run


@pytest.fixture(scope="session")
def tone_run(tmp_path_factory):
    """(run_dir, predictor, songs by track id, manifest) of the tiny tone CNN."""
    return train_tone_run(tmp_path_factory.mktemp("tone") / "cnn")
