"""Tests for encore.features.handcrafted on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest

from encore.exceptions import ParameterError
from encore.features.handcrafted import compute_handcrafted, handcrafted_feature_names

SAMPLE_RATE = 22050


def _tone(frequency: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _click_track(bpm: float, seconds: float = 8.0) -> np.ndarray:
    """Short decaying 1.5 kHz clicks every beat."""
    waveform = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    n = int(0.01 * SAMPLE_RATE)
    click = np.exp(-np.arange(n) / (0.002 * SAMPLE_RATE)) * np.sin(2 * np.pi * 1500 * np.arange(n) / SAMPLE_RATE)
    for start in (np.arange(0, seconds, 60.0 / bpm) * SAMPLE_RATE).astype(int):
        end = min(start + n, waveform.size)
        waveform[start:end] += click[: end - start]
    return waveform


@pytest.fixture(scope="module")
def names():
    return handcrafted_feature_names()


def test_names_match_the_vector_and_are_unique(names):
    features = compute_handcrafted(_tone(440.0), sample_rate=SAMPLE_RATE)
    assert features.dtype == np.float32 and features.shape == (len(names),)
    assert len(set(names)) == len(names)
    for name in ("mfcc_03_mean", "mfcc_19_std", "spectral_centroid_std", "chroma_C#_mean",
                 "spectral_contrast_6_mean", "zero_crossing_rate_std", "rms_mean", "tempo_bpm", "onset_rate_per_s"):
        assert name in names
    assert len(handcrafted_feature_names(n_mfcc=13)) == len(names) - 2 * 7
    assert np.all(np.isfinite(features))


def test_a_brighter_signal_has_a_higher_centroid_and_chroma_finds_the_pitch(names):
    dark = compute_handcrafted(_tone(220.0), sample_rate=SAMPLE_RATE)
    bright = compute_handcrafted(_tone(3000.0), sample_rate=SAMPLE_RATE)
    centroid = names.index("spectral_centroid_mean")
    assert bright[centroid] > 5 * dark[centroid]
    pitches = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    chroma = [names.index(f"chroma_{pitch}_mean") for pitch in pitches]
    assert int(np.argmax(dark[chroma])) == 9  # 220 Hz is an A


def test_a_120_bpm_click_track(names):
    features = compute_handcrafted(_click_track(120.0), sample_rate=SAMPLE_RATE)
    tempo = features[names.index("tempo_bpm")]
    assert any(abs(tempo - target) <= 4.0 for target in (60.0, 120.0, 240.0)), tempo
    assert features[names.index("onset_rate_per_s")] == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize("n_samples", [0, 10, 1000, 2 * SAMPLE_RATE])
def test_silent_and_very_short_input_is_finite(names, n_samples):
    features = compute_handcrafted(np.zeros(n_samples, np.float32), sample_rate=SAMPLE_RATE)
    assert features.shape == (len(names),) and np.all(np.isfinite(features))
    assert features[names.index("tempo_bpm")] == 0.0


def test_bad_input_raises_parameter_error():
    with pytest.raises(ParameterError, match="mono"):
        compute_handcrafted(np.zeros((2, 1000), np.float32), sample_rate=SAMPLE_RATE)
    with pytest.raises(ParameterError, match="hop_length"):
        compute_handcrafted(np.zeros(1000, np.float32), sample_rate=SAMPLE_RATE, hop_length=0)


def test_spectral_shape_equals_librosas_four_functions():
    import librosa

    from encore.features.handcrafted import spectral_shape

    rng = np.random.default_rng(1)
    waveform = (_tone(440.0) + 0.1 * rng.standard_normal(2 * SAMPLE_RATE)).astype(np.float32)
    waveform[: SAMPLE_RATE // 4] = 0.0  # silent frames too
    magnitude = np.abs(librosa.stft(waveform, n_fft=1024, hop_length=256))
    ours = spectral_shape(magnitude, magnitude**2, sample_rate=SAMPLE_RATE, n_fft=1024)
    reference = np.vstack([
        librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
        librosa.feature.spectral_bandwidth(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
        librosa.feature.spectral_rolloff(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
        librosa.feature.spectral_flatness(S=magnitude),
    ])
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3)
