"""Hand-crafted clip descriptors for the classical (non-neural) baseline.

One STFT per clip feeds every spectral feature (librosa functions are called with
``S=``): MFCCs, spectral shape, contrast, RMS, chroma, and the onset envelope behind the
tempo and onset-rate estimates. Frame-wise features are summarised by their mean and
standard deviation over the clip. :func:`handcrafted_feature_names` lists the vector's
entries in order.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
N_CONTRAST_BANDS = 6  # librosa's n_bands; gives n_bands + 1 contrast rows
N_MELS = 128  # mel bands behind the MFCCs and the onset envelope
_SILENCE_POWER = 1e-10  # mean STFT power below this counts as silence


def _frame_row_names(n_mfcc: int) -> list[list[str]]:
    """Row names of each frame-wise feature block, in vector order."""
    return [
        [f"mfcc_{index:02d}" for index in range(n_mfcc)],
        ["spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness"],
        [f"spectral_contrast_{band}" for band in range(N_CONTRAST_BANDS + 1)],
        ["zero_crossing_rate"],
        ["rms"],
        [f"chroma_{pitch}" for pitch in PITCH_CLASSES],
    ]


def handcrafted_feature_names(*, n_mfcc: int = 20) -> list[str]:
    """Names of the entries of :func:`compute_handcrafted`'s vector, in order.

    Each frame-wise block gives its rows' means, then their standard deviations
    (``"mfcc_00_mean" ... "mfcc_19_mean", "mfcc_00_std" ...``); MFCCs count from 0
    (``mfcc_00`` follows the overall level). The vector ends with ``"tempo_bpm"`` and
    ``"onset_rate_per_s"``.

    Args:
        n_mfcc: Number of MFCCs, as passed to :func:`compute_handcrafted`.

    Returns:
        Feature names, ``len == 2 * (n_mfcc + 25) + 2``.
    """
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, numbers.Integral) or n_mfcc <= 0:
        raise ParameterError(f"n_mfcc={n_mfcc!r} must be a positive integer")
    names: list[str] = []
    for rows in _frame_row_names(int(n_mfcc)):
        names += [f"{row}_mean" for row in rows] + [f"{row}_std" for row in rows]
    return names + ["tempo_bpm", "onset_rate_per_s"]


def spectral_shape(magnitude: np.ndarray, power: np.ndarray, *, sample_rate: int, n_fft: int) -> np.ndarray:
    """Centroid, bandwidth, 85 % roll-off (Hz) and flatness per frame, in one pass.

    Equal (to float rounding) to ``librosa.feature.spectral_centroid``, ``spectral_bandwidth``,
    ``spectral_rolloff`` and ``spectral_flatness`` on ``S=magnitude``, which normalise the
    spectrum three times over and compute the centroid twice.

    Args:
        magnitude: ``|STFT|``, shape ``(n_fft // 2 + 1, n_frames)``.
        power: ``magnitude ** 2``.
        sample_rate: Sample rate in Hz.
        n_fft: FFT size.

    Returns:
        float array, shape ``(4, n_frames)``.
    """
    freq = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate).astype(magnitude.dtype)[:, None]
    total = magnitude.sum(axis=0, keepdims=True)
    total[total < np.finfo(magnitude.dtype).tiny] = 1.0  # librosa.util.normalize leaves silent frames as they are
    weights = magnitude / total
    centroid = (freq * weights).sum(axis=0)
    bandwidth = np.sqrt((weights * (freq - centroid) ** 2).sum(axis=0))
    cumulative = np.cumsum(magnitude, axis=0)
    rolloff = freq[np.argmax(cumulative >= 0.85 * cumulative[-1:], axis=0), 0]
    floored = np.maximum(1e-10, power)
    flatness = np.exp(np.log(floored).mean(axis=0)) / floored.mean(axis=0)
    return np.vstack([centroid, bandwidth, rolloff, flatness])


def _contrast_fmin(sample_rate: int) -> float:
    """librosa's 200 Hz, lowered when the top contrast band would pass Nyquist."""
    fmin = 200.0
    top = fmin * 2.0 ** (N_CONTRAST_BANDS - 1)
    return fmin if top < sample_rate / 2.0 else 0.9 * (sample_rate / 2.0) / 2.0 ** (N_CONTRAST_BANDS - 1)


def compute_handcrafted(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mfcc: int = 20,
) -> np.ndarray:
    """Summarise a clip as a fixed-length vector of hand-crafted features.

    Features, all from one STFT except the zero-crossing rate (time domain): MFCCs over
    a 128-band mel spectrogram, spectral centroid / bandwidth / roll-off (Hz) and
    flatness, spectral contrast (7 bands, dB), zero-crossing rate, RMS, and 12 chroma
    bins (tuning fixed at A440), each as mean and standard deviation over frames; then
    the tempo (BPM, from the onset envelope's tempogram) and onset rate (onsets per
    second). Silent or very short input gives finite values: it is zero-padded to one
    window, and tempo and onset rate are 0 for silence.

    Args:
        waveform: Mono audio, shape ``(n_samples,)``.
        sample_rate: Sample rate in Hz.
        n_fft: FFT size in samples.
        hop_length: Samples between frames.
        n_mfcc: Number of MFCCs.

    Returns:
        float32 vector, shape ``(n_features,)``, named by :func:`handcrafted_feature_names`.

    Raises:
        ParameterError: ``waveform`` is not 1-D, or a setting is not a positive integer.
    """
    import librosa  # heavy import, only needed here

    names = handcrafted_feature_names(n_mfcc=n_mfcc)
    for name, value in (("sample_rate", sample_rate), ("n_fft", n_fft), ("hop_length", hop_length)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ParameterError(f"{name}={value!r} must be a positive integer")
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ParameterError(
            f"waveform has shape {waveform.shape}; compute_handcrafted needs mono (n_samples,), "
            "e.g. load_audio(..., mono=True)"
        )
    duration = waveform.shape[0] / sample_rate
    if waveform.shape[0] < n_fft:
        waveform = np.pad(waveform, (0, n_fft - waveform.shape[0]))
    waveform = np.nan_to_num(waveform, nan=0.0, posinf=0.0, neginf=0.0)

    # The one STFT everything spectral is computed from.
    stft = librosa.stft(waveform, n_fft=n_fft, hop_length=hop_length, center=True, pad_mode="constant")
    magnitude = np.abs(stft)
    power = magnitude**2
    silent = float(power.mean()) < _SILENCE_POWER
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=N_MELS))

    blocks = [
        librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc),
        spectral_shape(magnitude, power, sample_rate=sample_rate, n_fft=n_fft),
        librosa.feature.spectral_contrast(
            S=magnitude, sr=sample_rate, n_bands=N_CONTRAST_BANDS, fmin=_contrast_fmin(sample_rate)
        ),
        librosa.feature.zero_crossing_rate(waveform, frame_length=n_fft, hop_length=hop_length, center=True),
        librosa.feature.rms(S=magnitude, frame_length=n_fft),
        librosa.feature.chroma_stft(S=power, sr=sample_rate, tuning=0.0),
    ]
    values: list[np.ndarray] = []
    for block in blocks:
        values += [block.mean(axis=1), block.std(axis=1)]

    tempo_bpm, onset_rate = 0.0, 0.0
    if not silent:
        onset_envelope = librosa.onset.onset_strength(S=mel_db, sr=sample_rate, hop_length=hop_length)
        if onset_envelope.max() > 0:
            tempo_bpm = float(
                librosa.feature.tempo(onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length)[0]
            )
            onsets = librosa.onset.onset_detect(
                onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length, units="frames"
            )
            onset_rate = len(onsets) / duration if duration > 0 else 0.0
    values.append(np.array([tempo_bpm, onset_rate]))

    features = np.concatenate(values).astype(np.float32)
    if not np.all(np.isfinite(features)):
        n_bad = int((~np.isfinite(features)).sum())
        logger.warning("%d non-finite handcrafted feature values set to 0", n_bad)
        features = np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
    assert features.shape == (len(names),), (features.shape, len(names))
    return features
