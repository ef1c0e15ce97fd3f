"""Hand-crafted clip descriptors for the classical (non-neural) baseline.

One STFT per clip feeds every spectral feature (librosa functions are called with
``S=``): MFCCs and their deltas, spectral shape, contrast and its movement over time, RMS,
chroma with its statistics and tonnetz, the harmonic/percussive split of the mel
spectrogram, and the onset envelope behind tempo, beat strength and pulse clarity.
Frame-wise features are summarised by their mean and standard deviation over the clip.
:func:`handcrafted_feature_names` lists the vector's entries in order and
:func:`handcrafted_families` groups them by family, so importance and selection can speak
of families. The first 92 entries (version 1's whole vector) are unchanged.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
N_CONTRAST_BANDS = 6  # librosa's n_bands; gives n_bands + 1 contrast rows
N_MELS = 128  # mel bands behind the MFCCs, the onset envelope and the harmonic/percussive split
HPSS_KERNEL = 17  # median-filter length (mel frames and mel bands) of the harmonic/percussive split
TONNETZ_AXES = ("fifth_x", "fifth_y", "minor_x", "minor_y", "major_x", "major_y")
_SILENCE_POWER = 1e-10  # mean STFT power below this counts as silence
# Krumhansl-Kessler key profiles (C major, C minor), for the key clarity and mode of the mean chroma.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _layout(n_mfcc: int) -> list[tuple[str, list[str]]]:
    """``(family, names)`` blocks in vector order."""

    def summary(rows: list[str]) -> list[str]:
        return [f"{row}_mean" for row in rows] + [f"{row}_std" for row in rows]

    mfcc = [f"mfcc_{index:02d}" for index in range(n_mfcc)]
    contrast = [f"spectral_contrast_{band}" for band in range(N_CONTRAST_BANDS + 1)]
    return [
        # version 1's vector, in its order
        ("mfcc", summary(mfcc)),
        ("spectral_shape", summary(["spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness"])),
        ("spectral_contrast", summary(contrast)),
        ("zero_crossings", summary(["zero_crossing_rate"])),
        ("energy", summary(["rms"])),
        ("chroma", summary([f"chroma_{pitch}" for pitch in PITCH_CLASSES])),
        ("rhythm", ["tempo_bpm", "onset_rate_per_s"]),
        # added in version 2
        ("mfcc_dynamics", [f"{row}_delta_std" for row in mfcc]),
        ("contrast_dynamics", [f"{row}_flux" for row in contrast]),
        ("rhythm", ["onset_strength_mean", "onset_strength_std", "beat_strength", "pulse_clarity", "beat_interval_cv"]),
        ("harmonic_percussive", ["harmonic_share_mean", "harmonic_share_std", "harmonic_db_mean", "percussive_db_mean"]),
        ("chroma_statistics", ["chroma_entropy_mean", "chroma_entropy_std", "chroma_flux_mean", "key_clarity", "key_mode"]),
        ("tonnetz", summary([f"tonnetz_{axis}" for axis in TONNETZ_AXES])),
    ]


def _check_n_mfcc(n_mfcc: int) -> int:
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, numbers.Integral) or n_mfcc <= 0:
        raise ParameterError(f"n_mfcc={n_mfcc!r} must be a positive integer")
    return int(n_mfcc)


def handcrafted_feature_names(*, n_mfcc: int = 20) -> list[str]:
    """Names of the entries of :func:`compute_handcrafted`'s vector, in order.

    Frame-wise blocks give their rows' means, then their standard deviations
    (``"mfcc_00_mean" ... "mfcc_19_mean", "mfcc_00_std" ...``); MFCCs count from 0
    (``mfcc_00`` follows the overall level). :func:`handcrafted_families` says which
    family each name belongs to.

    Args:
        n_mfcc: Number of MFCCs, as passed to :func:`compute_handcrafted`.

    Returns:
        Feature names, ``len == 3 * n_mfcc + 85`` (145 with 20 MFCCs).
    """
    return [name for _, names in _layout(_check_n_mfcc(n_mfcc)) for name in names]


def handcrafted_families(*, n_mfcc: int = 20) -> dict[str, list[str]]:
    """Feature names grouped by family (``"mfcc"``, ``"rhythm"``, ``"tonnetz"`` ...), families in vector order.

    Args:
        n_mfcc: Number of MFCCs, as passed to :func:`compute_handcrafted`.

    Returns:
        Family name to its features' names; every name of :func:`handcrafted_feature_names` once.
    """
    families: dict[str, list[str]] = {}
    for family, names in _layout(_check_n_mfcc(n_mfcc)):
        families.setdefault(family, []).extend(names)
    return families


def feature_family(name: str) -> str:
    """The family of a feature named by :func:`handcrafted_feature_names` (``"other"`` if unknown)."""
    for family, names in _layout(20):
        if name in names:
            return family
    if name.startswith("mfcc_"):  # other n_mfcc
        return "mfcc_dynamics" if name.endswith("_delta_std") else "mfcc"
    return "other"


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


def chroma_statistics(chroma: np.ndarray) -> np.ndarray:
    """Entropy (mean, sd), flux, key clarity and mode of a chromagram ``(12, n_frames)``.

    Entropy is each frame's normalised pitch-class entropy (0 = one pitch class, 1 = all
    alike); flux the mean L1 change between frames; key clarity the best correlation of
    the mean chroma with the 24 Krumhansl-Kessler key profiles, and mode the best major
    correlation less the best minor one (Krumhansl 1990).

    Returns:
        float array, shape ``(5,)``.
    """
    shares = chroma / np.maximum(chroma.sum(axis=0, keepdims=True), 1e-10)
    entropy = -(shares * np.log(np.maximum(shares, 1e-10))).sum(axis=0) / np.log(12.0)
    flux = np.abs(np.diff(shares, axis=1)).sum(axis=0).mean() if shares.shape[1] > 1 else 0.0
    mean = chroma.mean(axis=1)
    best = []
    for profile in (_MAJOR_PROFILE, _MINOR_PROFILE):
        keys = np.stack([np.roll(profile, shift) for shift in range(12)])
        if mean.std() < 1e-10:
            best.append(0.0)
            continue
        best.append(float(np.max([np.corrcoef(mean, key)[0, 1] for key in keys])))
    return np.array([entropy.mean(), entropy.std(), flux, max(best), best[0] - best[1]])


def rhythm_statistics(onset_envelope: np.ndarray, *, sample_rate: int, hop_length: int) -> tuple[float, np.ndarray]:
    """Tempo (BPM) and beat statistics from an onset-strength envelope.

    Returns:
        ``(tempo_bpm, [onset_strength_mean, onset_strength_std, beat_strength,
        pulse_clarity, beat_interval_cv])``: beat strength is the envelope's mean on the
        tracked beats over its overall mean; pulse clarity the envelope's autocorrelation
        peak between 30 and 300 BPM over its value at lag 0; the last the spread of the
        beat intervals over their mean (0 = a steady beat).
    """
    import librosa

    tempo_bpm = float(librosa.feature.tempo(onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length)[0])
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length, bpm=tempo_bpm, units="frames"
    )
    mean = float(onset_envelope.mean())
    beat_strength = float(onset_envelope[beats].mean()) / mean if len(beats) and mean > 0 else 0.0
    centred = onset_envelope - mean
    autocorrelation = librosa.autocorrelate(centred)
    frames_per_second = sample_rate / hop_length
    low, high = int(frames_per_second * 60 / 300), int(frames_per_second * 60 / 30)
    window = autocorrelation[max(low, 1) : min(high, len(autocorrelation))]
    pulse_clarity = float(window.max() / autocorrelation[0]) if window.size and autocorrelation[0] > 0 else 0.0
    intervals = np.diff(beats)
    interval_cv = float(intervals.std() / intervals.mean()) if len(intervals) > 1 and intervals.mean() > 0 else 0.0
    return tempo_bpm, np.array([mean, onset_envelope.std(), beat_strength, pulse_clarity, interval_cv])


def harmonic_percussive_statistics(mel_power: np.ndarray) -> np.ndarray:
    """Harmonic share (mean, sd over frames) and each part's mean level (dB) of a mel power spectrogram.

    The split is librosa's median-filtering HPSS (Fitzgerald 2010) on the mel spectrogram,
    an eighth of the STFT's bins, so it costs little next to the STFT.

    Returns:
        float array, shape ``(4,)``.
    """
    import librosa

    harmonic, percussive = librosa.decompose.hpss(mel_power, kernel_size=HPSS_KERNEL)
    h, p = harmonic.sum(axis=0), percussive.sum(axis=0)
    share = h / np.maximum(h + p, 1e-10)
    return np.array([share.mean(), share.std(), 10 * np.log10(max(h.mean(), 1e-10)), 10 * np.log10(max(p.mean(), 1e-10))])


def compute_handcrafted(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mfcc: int = 20,
) -> np.ndarray:
    """Summarise a clip as a fixed-length vector of hand-crafted features.

    Features, all from one STFT except the zero-crossing rate (time domain), by family:
    MFCCs over a 128-band mel spectrogram (mean, sd) and the spread of their deltas;
    spectral centroid / bandwidth / roll-off (Hz) and flatness; spectral contrast (7
    bands, dB) and its mean change between frames per band; zero-crossing rate; RMS;
    12 chroma bins (tuning fixed at A440) with their entropy, flux, key clarity and mode;
    tonnetz (Harte 2006) from the chroma; the harmonic/percussive split of the mel
    spectrogram; rhythm: tempo (BPM), onset rate (per second), the onset envelope's mean
    and sd, beat strength, pulse clarity and beat regularity. Silent or very short input
    gives finite values: it is zero-padded to one window, and the rhythm features are 0
    for silence.

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
            f"waveform has shape {waveform.shape}; compute_handcrafted needs mono (n_samples,), e.g. load_audio(..., mono=True)"
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
    mel_power = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=N_MELS)
    mel_db = librosa.power_to_db(mel_power)

    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc)
    contrast = librosa.feature.spectral_contrast(
        S=magnitude, sr=sample_rate, n_bands=N_CONTRAST_BANDS, fmin=_contrast_fmin(sample_rate)
    )
    chroma = librosa.feature.chroma_stft(S=power, sr=sample_rate, tuning=0.0)
    blocks = [
        mfcc,
        spectral_shape(magnitude, power, sample_rate=sample_rate, n_fft=n_fft),
        contrast,
        librosa.feature.zero_crossing_rate(waveform, frame_length=n_fft, hop_length=hop_length, center=True),
        librosa.feature.rms(S=magnitude, frame_length=n_fft),
        chroma,
    ]
    values: list[np.ndarray] = []
    for block in blocks:
        values += [block.mean(axis=1), block.std(axis=1)]

    tempo_bpm, onset_rate, rhythm = 0.0, 0.0, np.zeros(5)
    if not silent:
        onset_envelope = librosa.onset.onset_strength(S=mel_db, sr=sample_rate, hop_length=hop_length)
        if onset_envelope.max() > 0:
            tempo_bpm, rhythm = rhythm_statistics(onset_envelope, sample_rate=sample_rate, hop_length=hop_length)
            # float64: numba 0.68 / llvmlite 0.50 miscompile librosa's peak_pick for float32 on Intel Emerald
            # Rapids (host CPU "emeraldrapids"): a segmentation fault, seen here; the float64 loop is sound
            onsets = librosa.onset.onset_detect(
                onset_envelope=onset_envelope.astype(np.float64), sr=sample_rate, hop_length=hop_length, units="frames"
            )
            onset_rate = len(onsets) / duration if duration > 0 else 0.0
    values.append(np.array([tempo_bpm, onset_rate]))

    # version 2's families
    delta_width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))  # librosa.feature.delta needs width <= frames, odd
    values.append(librosa.feature.delta(mfcc, width=delta_width).std(axis=1) if delta_width >= 3 else np.zeros(n_mfcc))
    values.append(np.abs(np.diff(contrast, axis=1)).mean(axis=1) if contrast.shape[1] > 1 else np.zeros(len(contrast)))
    values.append(rhythm)
    values.append(harmonic_percussive_statistics(mel_power) if not silent else np.array([0.0, 0.0, -100.0, -100.0]))
    values.append(chroma_statistics(chroma))
    tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=sample_rate)
    values += [tonnetz.mean(axis=1), tonnetz.std(axis=1)]

    features = np.concatenate(values).astype(np.float32)
    if not np.all(np.isfinite(features)):
        n_bad = int((~np.isfinite(features)).sum())
        logger.warning("%d non-finite handcrafted feature values set to 0", n_bad)
        features = np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
    assert features.shape == (len(names),), (features.shape, len(names))
    return features
