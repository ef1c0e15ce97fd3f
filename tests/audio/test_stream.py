"""Tests for encore.audio.stream and for windows that read only themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

import encore.audio.pyav as pyav_module
from encore.audio import load_audio, stream_audio
from encore.exceptions import AudioDecodeError, ParameterError

SAMPLE_RATE = 44100


def _chirp(seconds: float, sample_rate: int = SAMPLE_RATE, channels: int = 2) -> np.ndarray:
    """Non-periodic tonal signal, (n_samples, channels), so a misplaced block cannot match."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    left = 0.3 * np.sin(2 * np.pi * (200 * t + 40 * t**2)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    return np.stack([left, left[::-1]][:channels], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    signal = _chirp(5.0)
    paths = {}
    for ext, fmt, subtype in [
        ("wav", "WAV", "FLOAT"),
        ("flac", "FLAC", "PCM_24"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ]:
        paths[ext] = folder / f"chirp.{ext}"
        soundfile.write(paths[ext], signal, SAMPLE_RATE, format=fmt, subtype=subtype)
    return paths


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
@pytest.mark.parametrize(("offset", "duration"), [(0.0, None), (1.3, 2.45)])
def test_blocks_concatenate_to_the_whole_window(files, ext, offset, duration):
    whole = load_audio(files[ext], sample_rate=16000, offset=offset, duration=duration)
    blocks = list(stream_audio(files[ext], sample_rate=16000, block_seconds=0.7, offset=offset, duration=duration))
    assert all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    assert [len(block) for block in blocks[:-1]] == [11200] * (len(blocks) - 1)
    assert 0 < len(blocks[-1]) <= 11200
    joined = np.concatenate(blocks)
    assert joined.shape == whole.shape
    # MP3 whole files decode through libsndfile's mpg123, streams through FFmpeg: 1e-6 apart
    np.testing.assert_allclose(joined, whole, atol=1e-5)


def test_stream_errors(files, tmp_path):
    with pytest.raises(ParameterError, match="block_seconds"):
        stream_audio(files["wav"], sample_rate=16000, block_seconds=0)
    with pytest.raises(ParameterError, match="sample_rate"):
        stream_audio(files["wav"], sample_rate=-1)
    (tmp_path / "text.flac").write_text("not audio at all\n" * 50)
    with pytest.raises(AudioDecodeError, match=r"text\.flac.*not a recognised"):
        stream_audio(tmp_path / "text.flac", sample_rate=16000)
    with pytest.raises(AudioDecodeError, match=r"starts at 9\.0 s, beyond the end"):
        list(stream_audio(files["flac"], sample_rate=16000, offset=9.0))
    with pytest.raises(AudioDecodeError, match=r"starts at 9\.0 s, beyond the end"):
        list(stream_audio(files["mp3"], sample_rate=16000, offset=9.0))


def test_an_mp3_window_decodes_only_itself_and_lands_exactly(tmp_path, monkeypatch):
    # Guards libsndfile 1.2's MP3 mis-seek (VBR): the window must equal the same slice of
    # the whole decode, and must not be found by decoding everything before it.
    path = tmp_path / "long.mp3"
    soundfile.write(path, _chirp(40.0, 16000, channels=1), 16000, format="MP3", subtype="MPEG_LAYER_III")
    whole = load_audio(path, sample_rate=16000)
    decoded = []
    original = pyav_module.frame_to_float

    def counting(frame):
        samples = original(frame)
        decoded.append(samples.shape[1])
        return samples

    monkeypatch.setattr(pyav_module, "frame_to_float", counting)
    window = load_audio(path, sample_rate=16000, offset=33.3, duration=1.0)
    start = round(33.3 * 16000)
    np.testing.assert_allclose(window, whole[start : start + 16000], atol=1e-5)
    assert sum(decoded) < 3 * 16000  # the 1-s window plus pre-roll, not the 33 s before it


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)  # one worker's share; OpenMP threads crawl on a busy machine
    from encore.audio import stream_audio
    from encore.features import LogMelSpectrogram
    from encore.features.streaming import stream_log_mel

    path = sys.argv[1]
    frontend = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, n_mels=64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_samples = n_frames = 0
    total = 0.0

    def counted(blocks):
        global n_samples
        for block in blocks:
            n_samples += block.size
            yield block

    blocks = stream_audio(path, sample_rate=16000, block_seconds=60.0)
    for frames in stream_log_mel(counted(blocks), frontend):
        n_frames += frames.shape[-1]
        total += float(frames.mean())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grown_mb": (after - before) / 1024, "n_samples": n_samples, "n_frames": n_frames}))
    """
)


@pytest.mark.slow
def test_a_one_hour_file_streams_with_bounded_memory(tmp_path):
    # One hour of 22.05 kHz mono PCM: 159 MB on disk, 318 MB as float32 if read whole,
    # 230 MB at 16 kHz. Written block by block so the test itself stays small.
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(22050 * 60)).astype(np.float32)
    with soundfile.SoundFile(path, "w", samplerate=22050, channels=1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(noise)
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True, timeout=300, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_samples"] == 3600 * 16000
    assert report["n_frames"] == 1 + 3600 * 16000 // 256
    assert report["grown_mb"] < 200, report
