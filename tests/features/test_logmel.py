"""Tests for encore.features.logmel, against librosa as torchaudio's compatibility tests do."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from encore.exceptions import ParameterError
from encore.features.logmel import LogMelSpectrogram, log_mel_spectrogram, mel_filterbank, mel_frequencies


def _music_like(sample_rate: int, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Three chords with harmonics and decaying envelopes, plus noise bursts, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    waveform = np.zeros(n)
    chords = [(220.0, 277.18, 329.63), (196.0, 246.94, 293.66), (174.61, 220.0, 261.63)]
    step = n // len(chords)
    for index, chord in enumerate(chords):
        part = slice(index * step, (index + 1) * step)
        envelope = np.exp(-3.0 * (t[part] - t[part][0]))
        for root in chord:
            for harmonic in range(1, 6):
                waveform[part] += envelope * np.sin(2 * np.pi * root * harmonic * t[part]) / harmonic**1.5
    for start in rng.integers(0, n - sample_rate // 20, size=4):  # snare-like bursts
        burst = rng.standard_normal(sample_rate // 20) * np.exp(-np.linspace(0, 6, sample_rate // 20))
        waveform[start : start + burst.size] += 0.5 * burst
    return (0.2 * waveform).astype(np.float32)


SETTINGS = [
    {
        "sample_rate": 16000,
        "n_fft": 512,
        "hop_length": 160,
        "win_length": 400,
        "n_mels": 64,
        "f_min": 0.0,
        "f_max": 8000.0,
        "mel_scale": "slaney",
        "mel_norm": "slaney",
    },
    {
        "sample_rate": 22050,
        "n_fft": 2048,
        "hop_length": 512,
        "win_length": 2048,
        "n_mels": 128,
        "f_min": 30.0,
        "f_max": 11025.0,
        "mel_scale": "htk",
        "mel_norm": None,
    },
    {
        "sample_rate": 16000,
        "n_fft": 1024,
        "hop_length": 256,
        "win_length": 1024,
        "n_mels": 96,
        "f_min": 50.0,
        "f_max": 7600.0,
        "mel_scale": "htk",
        "mel_norm": "slaney",
    },
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s['sample_rate']}-{s['mel_scale']}-{s['mel_norm']}")
def test_matches_librosa_within_a_hundredth_of_a_db(settings):
    waveform = _music_like(settings["sample_rate"])
    module = LogMelSpectrogram(**settings, power=2.0, center=True, pad_mode="constant", amin=1e-10, top_db=None)
    ours = module(torch.from_numpy(waveform)).numpy()
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=waveform,
            sr=settings["sample_rate"],
            n_fft=settings["n_fft"],
            hop_length=settings["hop_length"],
            win_length=settings["win_length"],
            window="hann",
            center=True,
            pad_mode="constant",
            power=2.0,
            n_mels=settings["n_mels"],
            fmin=settings["f_min"],
            fmax=settings["f_max"],
            htk=settings["mel_scale"] == "htk",
            norm=settings["mel_norm"],
        ),
        ref=1.0,
        amin=1e-10,
        top_db=None,
    )
    assert ours.shape == reference.shape == (settings["n_mels"], module.n_frames(len(waveform)))
    audible = reference > reference.max() - 60.0
    assert audible.mean() > 0.3  # the comparison covers a good part of the spectrogram
    np.testing.assert_allclose(ours[audible], reference[audible], atol=0.01, rtol=0)


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
@pytest.mark.parametrize("mel_norm", ["slaney", None])
@pytest.mark.parametrize(
    ("sample_rate", "n_fft", "n_mels", "f_min", "f_max"),
    [(16000, 512, 64, 0.0, None), (22050, 2048, 128, 20.0, 9000.0), (44100, 1024, 40, 100.0, 16000.0)],
)
def test_filterbank_matches_librosa(mel_scale, mel_norm, sample_rate, n_fft, n_mels, f_min, f_max):
    ours = mel_filterbank(
        sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, f_min=f_min, f_max=f_max, mel_scale=mel_scale, mel_norm=mel_norm
    )
    reference = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=mel_scale == "htk", norm=mel_norm
    )
    assert ours.dtype == np.float32 and ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_a_440_hz_sine_peaks_in_the_nearest_mel_bin(mel_scale):
    sample_rate = 16000
    module = LogMelSpectrogram(sample_rate=sample_rate, n_fft=1024, hop_length=256, n_mels=64, mel_scale=mel_scale)
    t = torch.arange(sample_rate) / sample_rate
    spectrum = module(torch.sin(2 * torch.pi * 440.0 * t)).mean(dim=-1)
    centres = mel_frequencies(66, f_min=0.0, f_max=sample_rate / 2, mel_scale=mel_scale)[1:-1]
    np.testing.assert_allclose(module.center_frequencies(), centres)
    assert int(spectrum.argmax()) == int(np.argmin(np.abs(centres - 440.0)))


@pytest.mark.parametrize("top_db", [None, 40.0])
def test_each_item_alone_equals_the_batch(top_db):
    module = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, top_db=top_db)
    batch = torch.from_numpy(
        np.stack([_music_like(16000, 1.0, seed) * gain for seed, gain in [(0, 1.0), (1, 0.01), (2, 3.0), (3, 0.1)]])
    )
    together = module(batch)
    assert together.shape == (4, 64, module.n_frames(batch.shape[-1]))
    for index in range(batch.shape[0]):
        torch.testing.assert_close(module(batch[index]), together[index], atol=1e-4, rtol=0)
        torch.testing.assert_close(module(batch[index : index + 1])[0], together[index], atol=1e-4, rtol=0)


def test_top_db_floors_each_item_at_its_own_peak():
    module = LogMelSpectrogram(sample_rate=16000, top_db=50.0)
    batch = torch.from_numpy(np.stack([_music_like(16000, 0.5), 1e-3 * _music_like(16000, 0.5, seed=1)]))
    output = module(batch)
    for item in output:
        assert float(item.max() - item.min()) == pytest.approx(50.0, abs=1e-3)


def test_settings_rebuild_the_module_and_are_json():
    module = LogMelSpectrogram(
        sample_rate=22050,
        n_fft=1024,
        hop_length=256,
        win_length=800,
        n_mels=80,
        f_min=20.0,
        f_max=10000.0,
        power=1.0,
        mel_scale="htk",
        mel_norm=None,
        center=True,
        pad_mode="reflect",
        amin=1e-5,
        top_db=80.0,
    )
    settings = json.loads(json.dumps(module.settings()))
    rebuilt = LogMelSpectrogram(**settings)
    assert rebuilt.settings() == module.settings()
    waveform = torch.from_numpy(_music_like(22050, 0.5))
    torch.testing.assert_close(rebuilt(waveform), module(waveform))
    assert set(module.state_dict()) == {"window", "mel_fb"}


def test_log10_1p_compression_matches_musicnn_on_librosa_mel():
    """musicnn's input: log10(1 + 10000 * librosa's mel power), 16 kHz, n_fft 512, hop 256, 96 bands."""
    waveform = _music_like(16000)
    module = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, compression="log10_1p")
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=16000,
        n_fft=512,
        hop_length=256,
        n_mels=96,
        power=2.0,
        center=True,
        pad_mode="constant",
        htk=False,
        norm="slaney",
    )
    reference = np.log10(1.0 + 10000.0 * mel.astype(np.float32))
    ours = module(torch.from_numpy(waveform)).numpy()
    assert reference.max() > 1.0  # loud enough that the compression is not linear here
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)


def test_compression_settings_round_trip_and_db_cards_keep_their_keys():
    module = LogMelSpectrogram(n_mels=96, compression="log10_1p", compression_gain=100.0)
    settings = json.loads(json.dumps(module.settings()))
    assert settings["compression"] == "log10_1p" and settings["compression_gain"] == 100.0
    assert LogMelSpectrogram(**settings).settings() == module.settings()
    assert "compression" not in LogMelSpectrogram(n_mels=96).settings()  # dB models' cards are as before


def test_n_frames_matches_forward_without_centering():
    module = LogMelSpectrogram(n_fft=512, hop_length=128, center=False)
    for n_samples in (512, 513, 1000, 16000):
        assert module(torch.zeros(n_samples)).shape[-1] == module.n_frames(n_samples)


def test_numpy_helper_matches_the_module():
    waveform = _music_like(16000, 0.5)
    expected = LogMelSpectrogram(n_mels=40)(torch.from_numpy(waveform)).numpy()
    ours = log_mel_spectrogram(waveform, n_mels=40)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    with pytest.raises(ParameterError, match="n_mel"):
        log_mel_spectrogram(waveform, n_mel=40)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hop_length": 0}, r"hop_length=0 must be a positive integer"),
        ({"hop_length": 2.5}, "hop_length"),
        ({"sample_rate": -16000}, "sample_rate"),
        ({"n_fft": 0}, "n_fft"),
        ({"n_mels": 0}, "n_mels"),
        ({"n_fft": 256, "win_length": 400}, r"win_length=400 is longer than n_fft=256"),
        ({"f_max": 9000.0}, r"f_max=9000.0 is above the Nyquist"),
        ({"f_min": 8000.0}, "f_min"),
        ({"f_min": -1.0}, "f_min"),
        ({"mel_scale": "bark"}, "mel_scale"),
        ({"mel_norm": "l2"}, "mel_norm"),
        ({"pad_mode": "mirror"}, "pad_mode"),
        ({"power": 0.0}, "power"),
        ({"amin": 0.0}, "amin"),
        ({"top_db": -10.0}, "top_db"),
        ({"compression": "ln"}, "compression"),
        ({"compression": "log10_1p", "top_db": 80.0}, "top_db"),
        ({"compression": "log10_1p", "compression_gain": 0.0}, "compression_gain"),
    ],
)
def test_bad_settings_raise_parameter_error(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        LogMelSpectrogram(sample_rate=kwargs.pop("sample_rate", 16000), **kwargs)


@pytest.mark.filterwarnings("ignore")
def test_onnx_export_matches_for_other_batch_sizes_and_lengths():
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import io

    module = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=160, win_length=400, top_db=80.0).eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        (torch.randn(2, 16000),),
        buffer,
        dynamo=False,
        opset_version=17,
        input_names=["waveform"],
        output_names=["log_mel"],
        dynamic_axes={"waveform": {0: "batch", 1: "n_samples"}, "log_mel": {0: "batch", 2: "n_frames"}},
    )
    session = onnxruntime.InferenceSession(buffer.getvalue())
    waveform = torch.from_numpy(np.stack([_music_like(16000, 0.7, seed) for seed in range(3)]))
    (exported,) = session.run(None, {"waveform": waveform.numpy()})
    np.testing.assert_allclose(exported, module(waveform).detach().numpy(), atol=0.01, rtol=0)
