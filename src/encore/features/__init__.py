"""Features: the log-mel front end, hand-crafted descriptors, and their on-disk cache.

Example:
    >>> from encore.features import LogMelSpectrogram
    >>> frontend = LogMelSpectrogram(sample_rate=16000, n_mels=64)
"""

from encore.features.cache import FeatureCache, file_digest, settings_digest
from encore.features.extract import ExtractionResult, extract_features, handcrafted_settings, logmel_settings
from encore.features.handcrafted import compute_handcrafted, handcrafted_feature_names
from encore.features.logmel import (
    LogMelSpectrogram,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
)
from encore.features.streaming import log_mel_chunked, stream_log_mel

__all__ = [
    "ExtractionResult",
    "FeatureCache",
    "LogMelSpectrogram",
    "compute_handcrafted",
    "extract_features",
    "file_digest",
    "handcrafted_feature_names",
    "handcrafted_settings",
    "hz_to_mel",
    "log_mel_chunked",
    "log_mel_spectrogram",
    "logmel_settings",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "settings_digest",
    "stream_log_mel",
]
