"""The demo's instruments: oscillators, envelopes, Butterworth filters and noise drums.

numpy-vectorised building blocks that :mod:`encore.demo.synth_audio` arranges into songs:
band-limited wavetable saws and squares, sine and FM tones, noise drums, and filters
(:func:`scipy.signal.lfilter`). Tones and envelopes of common lengths are cached read-only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.signal import butter, lfilter

__all__ = [
    "butter_filter",
    "cymbal",
    "envelope",
    "keys_tone",
    "kick",
    "midi_hz",
    "mix_in",
    "noise_hit",
    "oscillator",
    "snare",
]


def midi_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


def butter_filter(
    x: np.ndarray,
    cutoff: float | tuple[float, float],
    sample_rate: int,
    kind: Literal["low", "high", "band"] = "low",
    order: int = 2,
) -> np.ndarray:
    """Butterworth low-, high- or band-pass; cutoffs in Hz are clamped below Nyquist."""
    nyq = 0.5 * sample_rate
    wn: float | tuple[float, float]
    if isinstance(cutoff, tuple):
        wn = (max(cutoff[0] / nyq, 1e-3), min(cutoff[1] / nyq, 0.95))
    else:
        wn = min(max(cutoff / nyq, 1e-3), 0.95)
    b, a = butter(order, wn, btype=kind)
    return lfilter(b, a, x).astype(np.float32)


_TABLE_SIZE = 2048


@lru_cache(maxsize=256)
def _wavetable(wave: str, n_harmonics: int) -> np.ndarray:
    """One period of a band-limited saw or square with ``n_harmonics`` partials."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    k = np.arange(1, min(n_harmonics, _TABLE_SIZE // 2 - 1) + 1)
    amp = np.where(k % 2 == 1, 2.0, 0.0) / k if wave == "square" else 1.0 / k
    spectrum[k] = -1j * amp * _TABLE_SIZE / np.pi
    return np.fft.irfft(spectrum, _TABLE_SIZE).astype(np.float32)


def oscillator(freq: float, n: int, sample_rate: int, wave: str, phase0: float = 0.0, vibrato: float = 0.0) -> np.ndarray:
    """Sine, or band-limited saw or square (wavetable), from ``freq`` in Hz."""
    phase: np.ndarray
    if vibrato:
        inst = freq * (1.0 + vibrato * np.sin(2 * np.pi * 5.2 * np.arange(n) / sample_rate))
        phase = phase0 + np.cumsum(inst) / sample_rate
    else:
        phase = phase0 + (freq / sample_rate) * np.arange(n)
    if wave == "sine":
        return np.sin(2 * np.pi * phase)
    table = _wavetable(wave, max(1, int(0.5 * sample_rate / (freq * (1.0 + vibrato)))))
    return table[(phase * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)]


def envelope(n_hold: int, n_total: int, sample_rate: int, attack: float, decay: float, sustain: float) -> np.ndarray:
    """Attack ramp, exponential decay to ``sustain``, linear release after ``n_hold``.

    Envelopes of notes up to a second long are cached (read-only): drums, bass and keys
    repeat the same few lengths many times per song.
    """
    if n_total <= sample_rate:
        return _short_env(n_hold, n_total, sample_rate, attack, decay, sustain)
    return _make_env(n_hold, n_total, sample_rate, attack, decay, sustain)


def _make_env(n_hold: int, n_total: int, sample_rate: int, attack: float, decay: float, sustain: float) -> np.ndarray:
    t = np.arange(n_total) / sample_rate
    env = sustain + (1.0 - sustain) * np.exp(-t / decay)
    if attack > 0:
        env *= np.minimum(1.0, t / attack)
    if n_total > n_hold:
        env[n_hold:] *= np.linspace(1.0, 0.0, n_total - n_hold)
    env = env.astype(np.float32)
    env.setflags(write=False)
    return env


_short_env = lru_cache(maxsize=512)(_make_env)


def mix_in(buf: np.ndarray, start: float, seg: np.ndarray, sample_rate: int, gain: float = 1.0) -> None:
    i = int(round(start * sample_rate))
    if 0 <= i < len(buf):
        end = min(len(buf), i + len(seg))
        buf[i:end] += gain * seg[: end - i]


def kick(sample_rate: int, hz: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.45 * sample_rate)) / sample_rate
    freq = hz * (1.0 + 2.5 * np.exp(-t / 0.035))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / decay)
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.003) * 0.3
    return (body + click).astype(np.float32)


def noise_hit(
    sample_rate: int, band: tuple[float, float], decay: float, length: float, rng: np.random.Generator, attack: float = 0.0
) -> np.ndarray:
    t = np.arange(int(length * sample_rate)) / sample_rate
    env = np.exp(-t / decay)
    if attack:
        env *= np.minimum(1.0, t / attack)
    noise = rng.standard_normal(len(t))
    if band[1] >= 0.45 * sample_rate:  # cymbal-like: a steep high-pass up to Nyquist
        return butter_filter(noise, band[0], sample_rate, "high", order=4) * env
    return butter_filter(noise, band, sample_rate, "band") * env


def snare(sample_rate: int, hz: float, decay: float, bright: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    tone = np.sin(2 * np.pi * hz * t) * np.exp(-t / 0.04)
    return 0.6 * tone + 1.6 * noise_hit(sample_rate, (900.0, 5200.0 * bright), decay, 0.35, rng)


def cymbal(sample_rate: int, decay: float, rng: np.random.Generator, ring: float = 1.0) -> np.ndarray:
    """Metallic ride/crash: inharmonic squares (808 style) plus high noise."""
    n = int(min(2.0, 5 * decay) * sample_rate)
    t = np.arange(n) / sample_rate
    metal = sum(np.sign(np.sin(2 * np.pi * f * ring * t)) for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0))
    body = butter_filter(0.15 * metal + rng.standard_normal(n), (3000.0, 7800.0), sample_rate, "band")
    return body * np.exp(-t / decay)


@lru_cache(maxsize=256)
def keys_tone(instrument: str, midi: int, n_hold: int, n_total: int, sample_rate: int) -> np.ndarray:
    """Cached enveloped tone of a keyboard-like instrument (read-only).

    ``"rhodes"``: FM with the modulator at the carrier frequency and a decaying index;
    ``"pluck"``: upright-bass-like sine with a fast-decaying second harmonic;
    ``"piano"``: five slightly stretched partials, the higher ones decaying faster.
    """
    t = np.arange(n_total) / sample_rate
    f = midi_hz(midi)
    if instrument == "rhodes":
        index = 0.3 + 1.8 * np.exp(-t / 0.15)
        tone = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t))
        env = envelope(n_hold, n_total, sample_rate, 0.002, 0.8, 0.3)
    elif instrument == "pluck":
        tone = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) * np.exp(-t / 0.08)
        env = envelope(n_hold, n_total, sample_rate, 0.004, 0.35, 0.1)
    else:
        decay = np.exp(-t / 0.6)
        tone = sum(np.sin(2 * np.pi * k * f * 1.0005**k * t) * decay**k / k for k in range(1, 6))
        env = envelope(n_hold, n_total, sample_rate, 0.002, 1.0, 0.4)
    out = (tone * env).astype(np.float32)
    out.setflags(write=False)
    return out
