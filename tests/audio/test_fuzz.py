"""Fuzzing load_audio with random and mutated bytes: only AudioDecodeError, never a crash.

Bounded for CI (a few seconds); raise ``max_examples`` locally for a longer run.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encore.audio import load_audio
from encore.exceptions import AudioDecodeError


def _seed(fmt: str, subtype: str) -> bytes:
    t = np.arange(8000) / 8000
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


SEEDS = {
    "wav": _seed("WAV", "PCM_16"),
    "flac": _seed("FLAC", "PCM_16"),
    "mp3": _seed("MP3", "MPEG_LAYER_III"),
    "ogg": _seed("OGG", "VORBIS"),
}


def _decode_or_report(data: bytes) -> None:
    try:
        waveform = load_audio(data, sample_rate=16000)
    except AudioDecodeError as err:
        assert "no file name given" in str(err)
    else:
        assert waveform.dtype == np.float32 and waveform.ndim == 1


@settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes(data):
    _decode_or_report(data)


@pytest.mark.parametrize("name", list(SEEDS))
@settings(max_examples=20, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files(name, data):
    original = bytearray(SEEDS[name])
    for _ in range(data.draw(st.integers(1, 8), label="n_mutations")):
        position = data.draw(st.integers(0, len(original) - 1), label="position")
        original[position] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(1, len(original)), label="length")
    _decode_or_report(bytes(original[:cut]))


REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.bin"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[path.stem for path in REGRESSIONS])
def test_inputs_the_atheris_harness_once_crashed_on(path):
    """Each file made load_audio raise something other than AudioDecodeError once (see its name)."""
    _decode_or_report(path.read_bytes())
