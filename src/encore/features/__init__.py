"""Features: the log-mel front end, hand-crafted descriptors, and their on-disk cache.

Example:
    >>> from encore.features import LogMelSpectrogram
    >>> frontend = LogMelSpectrogram(sample_rate=16000, n_mels=64)
"""

from encore.features.cache import FeatureCache, file_digest, settings_digest
from encore.features.handcrafted import compute_handcrafted, handcrafted_feature_names
from encore.features.logmel import (
    LogMelSpectrogram,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
)

__all__ = [
    "FeatureCache",
    "LogMelSpectrogram",
    "compute_handcrafted",
    "file_digest",
    "handcrafted_feature_names",
    "hz_to_mel",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "settings_digest",
]
