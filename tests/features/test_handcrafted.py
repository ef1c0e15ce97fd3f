"""Tests for encore.features.handcrafted on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest

from encore.exceptions import ParameterError
from encore.features.handcrafted import (
    compute_handcrafted,
    feature_family,
    handcrafted_families,
    handcrafted_feature_names,
)

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
    for name in (
        "mfcc_03_mean",
        "mfcc_19_std",
        "spectral_centroid_std",
        "chroma_C#_mean",
        "spectral_contrast_6_mean",
        "zero_crossing_rate_std",
        "rms_mean",
        "tempo_bpm",
        "onset_rate_per_s",
    ):
        assert name in names
    assert len(handcrafted_feature_names(n_mfcc=13)) == len(names) - 3 * 7
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
    reference = np.vstack(
        [
            librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
            librosa.feature.spectral_bandwidth(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
            librosa.feature.spectral_rolloff(S=magnitude, sr=SAMPLE_RATE, n_fft=1024),
            librosa.feature.spectral_flatness(S=magnitude),
        ]
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3)


def _noise(seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def _chord(pitches_hz: tuple[float, ...], seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (sum(0.2 * np.sin(2 * np.pi * f * t) for f in pitches_hz)).astype(np.float32)


def test_every_feature_has_one_named_family_and_version_1_comes_first(names):
    families = handcrafted_families()
    assert [n for group in families.values() for n in group if n in names] and sorted(
        n for group in families.values() for n in group
    ) == sorted(names)
    assert set(families) == {
        "mfcc",
        "spectral_shape",
        "spectral_contrast",
        "zero_crossings",
        "energy",
        "chroma",
        "rhythm",
        "mfcc_dynamics",
        "contrast_dynamics",
        "harmonic_percussive",
        "chroma_statistics",
        "tonnetz",
    }
    assert all(feature_family(n) == f for f, group in families.items() for n in group)
    assert len(names) == 145 and names[90:92] == ["tempo_bpm", "onset_rate_per_s"]  # version 1's 92 first, in order
    assert names[:2] == ["mfcc_00_mean", "mfcc_01_mean"] and names[40] == "spectral_centroid_mean"
    assert len(handcrafted_feature_names(n_mfcc=13)) == len(names) - 3 * 7


def test_a_click_track_has_a_clearer_pulse_and_stronger_beats_than_noise(names):
    clicks = compute_handcrafted(_click_track(120.0), sample_rate=SAMPLE_RATE)
    noise = compute_handcrafted(_noise(), sample_rate=SAMPLE_RATE)
    for feature in ("pulse_clarity", "beat_strength"):
        assert clicks[names.index(feature)] > 2 * noise[names.index(feature)], feature
    assert clicks[names.index("beat_interval_cv")] < 0.1  # a steady beat


def test_a_held_tone_is_harmonic_and_clicks_are_percussive(names):
    share = names.index("harmonic_share_mean")
    tone = compute_handcrafted(_tone(440.0, seconds=4.0), sample_rate=SAMPLE_RATE)
    clicks = compute_handcrafted(_click_track(120.0), sample_rate=SAMPLE_RATE)
    assert tone[share] > 0.9 and clicks[share] < 0.5
    assert tone[names.index("harmonic_db_mean")] > tone[names.index("percussive_db_mean")] + 10


def test_a_major_chord_is_tonal_major_and_unlike_noise_in_the_tonnetz(names):
    c_major = compute_handcrafted(_chord((261.63, 329.63, 392.0)), sample_rate=SAMPLE_RATE)
    noise = compute_handcrafted(_noise(4.0), sample_rate=SAMPLE_RATE)
    assert c_major[names.index("key_clarity")] > 0.6 > noise[names.index("key_clarity")]
    a_minor = compute_handcrafted(_chord((220.0, 261.63, 329.63)), sample_rate=SAMPLE_RATE)
    assert c_major[names.index("key_mode")] > a_minor[names.index("key_mode")] + 0.05  # the major triad reads more major
    assert c_major[names.index("chroma_entropy_mean")] < noise[names.index("chroma_entropy_mean")]
    tonnetz = [names.index(f"tonnetz_{axis}_mean") for axis in ("fifth_x", "fifth_y", "minor_x", "minor_y", "major_x", "major_y")]
    assert np.linalg.norm(c_major[tonnetz]) > 2 * np.linalg.norm(noise[tonnetz])


def test_contrast_flux_and_mfcc_deltas_equal_librosas_on_the_same_stft(names):
    """The per-band contrast flux (mean frame-to-frame change) and the MFCC delta spread, against librosa."""
    import librosa

    half = SAMPLE_RATE // 2
    tone, noise = _tone(440.0, seconds=4.0), _noise(4.0)
    waveform = np.concatenate([(tone if i % 2 else noise)[i * half : (i + 1) * half] for i in range(8)])
    ours = compute_handcrafted(waveform, sample_rate=SAMPLE_RATE)
    magnitude = np.abs(librosa.stft(waveform, n_fft=2048, hop_length=512, pad_mode="constant"))
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=SAMPLE_RATE, n_bands=6, fmin=200.0)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=magnitude**2, sr=SAMPLE_RATE, n_mels=128))
    deltas = librosa.feature.delta(librosa.feature.mfcc(S=mel_db, n_mfcc=20), width=9)
    flux = [names.index(f"spectral_contrast_{band}_flux") for band in range(7)]
    spread = [names.index(f"mfcc_{i:02d}_delta_std") for i in range(20)]
    np.testing.assert_allclose(ours[flux], np.abs(np.diff(contrast, axis=1)).mean(axis=1), rtol=1e-4)
    np.testing.assert_allclose(ours[spread], deltas.std(axis=1), rtol=1e-4)
    steady = compute_handcrafted((0.5 * tone + 0.5 * noise).astype(np.float32), sample_rate=SAMPLE_RATE)
    assert ours[spread].mean() > 1.5 * steady[spread].mean()  # the timbre jumps every half second
