"""Tests for encore.audio: decoding, windows, resampling, errors, and chunking."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile

from encore.audio import audio_duration, chunk_waveform, load_audio, random_crop
from encore.exceptions import AudioDecodeError, ParameterError

SAMPLE_RATE = 44100


def _chirp(seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Stereo test signal, (n_samples, 2): a tonal chirp, amplitude-modulated, and its reverse.

    Non-periodic, so a misplaced window cannot match by accident, and tonal, so lossy
    encoders use variable bit rates and no noise substitution.
    """
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    left = 0.3 * np.sin(2 * np.pi * (200 * t + 40 * t**2)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    return np.stack([left, left[::-1]], axis=1).astype(np.float32)


def _write_m4a(path, frames: np.ndarray, sample_rate: int) -> None:
    """AAC in an MP4 container, which libsndfile cannot read, through PyAV's encoder."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.T), format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """One short stereo file per format, with the signal written into it."""
    folder = tmp_path_factory.mktemp("audio")
    signal = _chirp(2.0)
    files = {}
    for ext, fmt, subtype in [
        ("wav", "WAV", "FLOAT"),
        ("flac", "FLAC", "PCM_24"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
        ("aiff", "AIFF", "PCM_24"),
        ("au", "AU", "FLOAT"),
    ]:
        path = folder / f"chirp.{ext}"
        soundfile.write(path, signal, SAMPLE_RATE, format=fmt, subtype=subtype)
        files[ext] = path
    files["opus"] = folder / "chirp.opus"
    soundfile.write(files["opus"], _chirp(2.0, 48000), 48000, format="OGG", subtype="OPUS")
    files["m4a"] = folder / "chirp.m4a"
    _write_m4a(files["m4a"], signal, SAMPLE_RATE)
    return signal, files


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "aiff", "au", "opus", "m4a"])
def test_every_format_decodes_to_float32_of_the_right_shape(audio_files, ext):
    _, files = audio_files
    stereo = load_audio(files[ext], sample_rate=16000, mono=False)
    mono = load_audio(files[ext], sample_rate=16000)
    assert stereo.dtype == np.float32 and mono.dtype == np.float32
    assert stereo.ndim == 2 and stereo.shape[0] == 2 and mono.shape == (stereo.shape[1],)
    # 2 s, give or take codec priming/padding (AAC adds up to ~2 frames)
    assert abs(mono.shape[0] - 32000) < 1000
    assert 0.1 < np.abs(mono).max() < 1.0


@pytest.mark.parametrize("ext", ["wav", "flac", "aiff", "au"])
def test_lossless_formats_round_trip_at_the_native_rate(audio_files, ext):
    signal, files = audio_files
    stereo = load_audio(files[ext], sample_rate=SAMPLE_RATE, mono=False)
    np.testing.assert_allclose(stereo, signal.T, atol=1e-6)
    mono = load_audio(files[ext], sample_rate=SAMPLE_RATE)
    np.testing.assert_allclose(mono, signal.mean(axis=1), atol=1e-6)


def test_64_bit_pcm_that_only_ffmpeg_reads_decodes_to_float():
    """A WAV of 64-bit integer PCM decodes to FFmpeg's s64 format, which PyAV's
    ``to_ndarray`` does not convert; found by the atheris fuzz harness."""
    import struct

    signal = 0.3 * np.sin(np.arange(800) / 5)
    data = (signal * 2.0**63).astype(np.int64).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000 * 8, 8, 64)  # PCM, mono, 8 kHz, 64 bits
    wav = (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    np.testing.assert_allclose(load_audio(wav, sample_rate=8000), signal, atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    sample_rate = 48000
    t = np.arange(sample_rate) / sample_rate
    path = tmp_path / "sine.wav"
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 1000 * t), sample_rate)
    waveform = load_audio(path, sample_rate=16000)
    assert waveform.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    assert np.argmax(spectrum) * 16000 / len(waveform) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "opus", "m4a"])
@pytest.mark.parametrize("offset", [0.25, 1.1])
def test_a_window_equals_the_same_slice_of_the_whole_file(audio_files, ext, offset):
    # MP3 is the case that needs care: libsndfile's seek lands off target in VBR files.
    _, files = audio_files
    rate = 48000 if ext == "opus" else SAMPLE_RATE
    whole = load_audio(files[ext], sample_rate=rate, mono=False)
    window = load_audio(files[ext], sample_rate=rate, mono=False, offset=offset, duration=0.5)
    start = round(offset * rate)
    assert window.shape == (2, round(0.5 * rate))
    np.testing.assert_allclose(window, whole[:, start : start + window.shape[1]], atol=1e-5)


def test_a_window_past_the_end_is_shorter(audio_files):
    _, files = audio_files
    tail = load_audio(files["flac"], sample_rate=SAMPLE_RATE, offset=1.5, duration=10.0)
    assert tail.shape == (round(0.5 * SAMPLE_RATE),)


@pytest.mark.parametrize("wrap", [lambda path: path.read_bytes(), lambda path: io.BytesIO(path.read_bytes())])
@pytest.mark.parametrize("ext", ["flac", "m4a"])
def test_bytes_and_file_objects_decode_like_paths(audio_files, wrap, ext):
    _, files = audio_files
    expected = load_audio(files[ext], sample_rate=16000, offset=0.5)
    np.testing.assert_array_equal(load_audio(wrap(files[ext]), sample_rate=16000, offset=0.5), expected)


@pytest.mark.parametrize("ext", ["wav", "mp3", "m4a"])
def test_audio_duration_reads_the_header(audio_files, ext):
    _, files = audio_files
    assert audio_duration(files[ext]) == pytest.approx(2.0, abs=0.05)


# --------------------------------------------------------------------------- errors


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioDecodeError, match=r"nope\.wav.*not found"):
        load_audio(path, sample_rate=16000)


def test_empty_file_and_empty_bytes(tmp_path):
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match=r"empty\.mp3.*empty \(0 bytes\)"):
        load_audio(path, sample_rate=16000)
    with pytest.raises(AudioDecodeError, match=r"audio data \(no file name given\).*empty"):
        load_audio(b"", sample_rate=16000)
    with pytest.raises(AudioDecodeError, match=r"^upload song\.mp3: buffer is empty"):
        load_audio(b"", sample_rate=16000, name="upload song.mp3")


def test_not_audio_suggests_converting(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not the samples you are looking for\n" * 20)
    with pytest.raises(AudioDecodeError, match=r"notes\.wav.*not a recognised.*ffmpeg"):
        load_audio(path, sample_rate=16000)
    with pytest.raises(AudioDecodeError, match=r"no file name given"):
        load_audio(b"\x00\x01garbage" * 100, sample_rate=16000)
    with pytest.raises(AudioDecodeError, match=r"notes\.wav"):
        audio_duration(path)
    with pytest.raises(AudioDecodeError, match=r"^notes\.wav: cannot read a duration") as err:
        audio_duration(path.read_bytes(), name="notes.wav")  # an upload names itself, not "<bytes>"
    assert "Errno" not in str(err.value) and "PyAV" not in str(err.value)


def test_a_decoder_reason_drops_the_errno_and_the_repeated_name():
    from encore.audio.sources import decoder_reason

    err = OSError("[Errno 1094995529] Invalid data found when processing input: 'x.mp3'")
    assert decoder_reason(err, "x.mp3") == "Invalid data found when processing input"


def test_zero_length_audio(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioDecodeError, match=r"silence\.wav.*zero length"):
        load_audio(path, sample_rate=16000)


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_offset_beyond_the_end(audio_files, ext):
    _, files = audio_files
    with pytest.raises(AudioDecodeError, match=r"starts at 5\.0 s, beyond the end"):
        load_audio(files[ext], sample_rate=16000, offset=5.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"sample_rate": 16000, "offset": -1.0}, "offset"),
        ({"sample_rate": 16000, "duration": 0.0}, "duration"),
        ({"sample_rate": 16000, "duration": float("nan")}, "duration"),
    ],
)
def test_bad_arguments_raise_parameter_error(audio_files, kwargs, name):
    _, files = audio_files
    with pytest.raises(ParameterError, match=name):
        load_audio(files["wav"], **kwargs)


# --------------------------------------------------------------------------- chunking


def test_chunks_are_non_overlapping_and_the_tail_is_padded():
    waveform = np.arange(25, dtype=np.float32)
    chunks = chunk_waveform(waveform, chunk_samples=10)
    assert chunks.shape == (3, 10) and chunks.dtype == np.float32
    np.testing.assert_array_equal(chunks[1], np.arange(10, 20))
    np.testing.assert_array_equal(chunks[2], [20, 21, 22, 23, 24, 0, 0, 0, 0, 0])


def test_a_short_tail_is_dropped_and_a_short_waveform_gives_one_chunk():
    assert chunk_waveform(np.ones(24), chunk_samples=10, min_fraction=0.5).shape == (2, 10)
    short = chunk_waveform(np.ones(3), chunk_samples=10, min_fraction=0.9)
    np.testing.assert_array_equal(short, [[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]])
    assert chunk_waveform(np.ones(0), chunk_samples=10).shape == (0, 10)


def test_overlapping_chunks_and_channels():
    waveform = np.arange(25, dtype=np.float32)
    chunks = chunk_waveform(waveform, chunk_samples=10, hop_samples=5)
    assert [chunk[0] for chunk in chunks] == [0, 5, 10, 15, 20]
    stereo = chunk_waveform(np.stack([waveform, -waveform]), chunk_samples=10)
    assert stereo.shape == (3, 2, 10)
    np.testing.assert_array_equal(stereo[:, 1], -chunks[::2])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"chunk_samples": 0}, "chunk_samples"),
        ({"chunk_samples": 10, "hop_samples": -1}, "hop_samples"),
        ({"chunk_samples": 10, "min_fraction": 1.5}, "min_fraction"),
    ],
)
def test_chunking_errors(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        chunk_waveform(np.ones(100), **kwargs)


def test_random_crop_is_a_window_of_the_input_and_pads_short_input():
    waveform = np.arange(100, dtype=np.float32)
    rng = np.random.default_rng(0)
    starts = {int(random_crop(waveform, 10, rng)[0]) for _ in range(50)}
    assert len(starts) > 10 and all(0 <= start <= 90 for start in starts)
    np.testing.assert_array_equal(random_crop(waveform[:3], 5, rng), [0, 1, 2, 0, 0])
