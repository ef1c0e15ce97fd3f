"""Audio decoding, resampling, downmixing and chunking.

Example:
    >>> from encore.audio import load_audio, chunk_waveform
    >>> waveform = load_audio("song.flac", sample_rate=16000)
    >>> chunks = chunk_waveform(waveform, chunk_samples=3 * 16000)
"""

from encore.audio.chunking import chunk_waveform, random_crop
from encore.audio.io import audio_duration, load_audio

__all__ = ["audio_duration", "chunk_waveform", "load_audio", "random_crop"]
