"""Bad audio: every failure is an AudioDecodeError naming the file and the reason."""

from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
import soundfile

from encore.audio import AudioChecks, load_audio
from encore.exceptions import AudioDecodeError, ParameterError


def _encoded(fmt: str, subtype: str, seconds: float = 3.0) -> bytes:
    t = np.arange(int(seconds * 44100)) / 44100
    buffer = io.BytesIO()
    soundfile.write(
        buffer, (0.3 * np.sin(2 * np.pi * (300 * t + 50 * t**2))).astype(np.float32), 44100, format=fmt, subtype=subtype
    )
    return buffer.getvalue()


def _wav_with_format_tag(tag: int) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, 16000, 32000, 2, 16)
    data = b"\x00\x01" * 8000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("MP3", "MPEG_LAYER_III")])
def test_a_truncated_file_says_truncated(tmp_path, fmt, subtype):
    data = _encoded(fmt, subtype)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match=rf"cut\.{fmt.lower()}.*truncated"):
        load_audio(path, sample_rate=16000)
    assert load_audio(data, sample_rate=16000).shape[0] > 40000  # the whole file is fine


def test_an_unsupported_codec_names_the_fix(tmp_path):
    path = tmp_path / "odd.wav"
    path.write_bytes(_wav_with_format_tag(0x7777))  # a WAV format tag no decoder knows
    with pytest.raises(AudioDecodeError, match=r"odd\.wav: unsupported codec.*ffmpeg -i"):
        load_audio(path, sample_rate=16000)


def test_silence_and_too_short_are_errors_or_warnings_as_configured(tmp_path, caplog):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    short = tmp_path / "short.wav"
    soundfile.write(short, 0.5 * np.ones(8000, np.float32), 16000)
    assert load_audio(silent, sample_rate=16000).shape == (16000,)  # no checks asked for: no opinion
    with pytest.raises(AudioDecodeError, match=r"silent\.wav: all silent"):
        load_audio(silent, sample_rate=16000, checks=AudioChecks())
    with pytest.raises(AudioDecodeError, match=r"short\.wav: too short for a chunk \(0\.500 s < min_seconds=3 s\)"):
        load_audio(short, sample_rate=16000, checks=AudioChecks(min_seconds=3.0))
    with caplog.at_level(logging.WARNING, logger="encore.audio.checks"):
        waveform = load_audio(short, sample_rate=16000, checks=AudioChecks(min_seconds=3.0, on_problem="warn"))
    assert waveform.shape == (8000,) and "too short" in caplog.text
    quiet = load_audio(silent, sample_rate=16000, checks=AudioChecks(silence_db=None))
    assert quiet.shape == (16000,)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"min_seconds": -1.0}, "min_seconds"), ({"silence_db": 3.0}, "silence_db"), ({"on_problem": "ignore"}, "on_problem")],
)
def test_bad_checks(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        AudioChecks(**kwargs)
