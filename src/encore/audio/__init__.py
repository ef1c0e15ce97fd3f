"""Audio decoding, resampling, downmixing, streaming, checks and chunking.

Example:
    >>> from encore.audio import load_audio, chunk_waveform
    >>> waveform = load_audio("song.flac", sample_rate=16000)
    >>> chunks = chunk_waveform(waveform, chunk_samples=3 * 16000)
"""

from encore.audio.checks import AudioChecks, check_waveform
from encore.audio.chunking import chunk_waveform, random_crop
from encore.audio.io import audio_duration, load_audio
from encore.audio.sources import AudioSource
from encore.audio.stream import stream_audio

__all__ = [
    "AudioChecks",
    "AudioSource",
    "audio_duration",
    "check_waveform",
    "chunk_waveform",
    "load_audio",
    "random_crop",
    "stream_audio",
]
