"""Predictor: rebuilt from the card, batching, aggregation, calibration, long songs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from inference_helpers import SAMPLE_RATE, build_tiny_model, song, tiny_card

import encore.inference.predictor as predictor_module
from encore.exceptions import CheckpointError, ParameterError
from encore.inference import Predictor


def eager_reference(model, waveform: np.ndarray, chunk_samples: int, temperature: float = 1.0) -> dict:
    """Song probabilities computed the plain way: all chunks in one eager batch."""
    from encore.audio import chunk_waveform

    chunks = torch.from_numpy(chunk_waveform(waveform, chunk_samples=chunk_samples))
    with torch.no_grad():
        out = model(chunks)
    return {
        "class_probs": torch.softmax(out["class"] / temperature, -1).mean(0).numpy(),
        "tag_probs": torch.sigmoid(out["tags"]).mean(0).numpy(),
        "scores": (out["regression"].mean(0) * 0.2 + 0.5).numpy(),
    }


def test_from_checkpoint_rebuilds_everything_from_the_card(tiny_run):
    predictor = Predictor.from_checkpoint(tiny_run)
    assert predictor.sample_rate == SAMPLE_RATE and predictor.chunk_samples == SAMPLE_RATE
    assert predictor.label_names == ["ambient", "jazz", "rock"] and predictor.backend == "torch"
    waveform = song(3.4)
    arrays = predictor.predict_waveform(waveform)
    reference = eager_reference(predictor.model, waveform, predictor.chunk_samples)
    for key, expected in reference.items():
        np.testing.assert_allclose(arrays[key], expected, atol=1e-5)
    low, high = arrays["score_intervals"][0]
    assert low <= arrays["scores"][0] <= high


@pytest.mark.parametrize("backend", ["torch", "eager", "onnx"])
def test_a_song_alone_equals_the_song_in_a_batch(tiny_run, backend):
    predictor = Predictor.from_checkpoint(tiny_run, batch_size=3, backend=backend)
    waveforms = [song(seconds, seed=i) for i, seconds in enumerate((0.4, 2.6, 5.0, 1.0))]
    batch = predictor.predict_arrays(waveforms)
    for i, waveform in enumerate(waveforms):
        alone = predictor.predict_waveform(waveform)
        for key, value in alone.items():
            np.testing.assert_allclose(batch[key][i], value, atol=1e-5, err_msg=f"{backend} song {i} {key}")


def test_calibration_temperature_divides_class_logits(tiny_run):
    plain = Predictor.from_checkpoint(tiny_run)
    waveform = song(3.0, seed=7)
    calibrated = Predictor(plain.model, tiny_card(calibration={"temperature": 3.0}))
    probs = calibrated.predict_waveform(waveform)["class_probs"]
    np.testing.assert_allclose(probs, eager_reference(plain.model, waveform, plain.chunk_samples, 3.0)["class_probs"], atol=1e-5)
    assert probs.max() < plain.predict_waveform(waveform)["class_probs"].max()
    with pytest.raises(CheckpointError, match="temperature"):  # a damaged card is refused when it is read
        Predictor(plain.model, tiny_card(calibration={"temperature": 0.0})).predict_waveform(waveform)


@pytest.mark.parametrize("hop_fraction", [1.0, 0.5, 0.3])
def test_long_file_is_decoded_in_bounded_windows_with_the_same_result(tiny_run, tmp_path, monkeypatch, hop_fraction):
    predictor = Predictor.from_checkpoint(tiny_run, batch_size=8)
    chunk = predictor.card.chunk
    predictor.card.chunk = chunk.model_copy(update={"hop_seconds": chunk.seconds * hop_fraction})  # overlapping chunks
    waveform = song(predictor_module.WINDOW_CHUNKS * 2.3, seed=3)  # 2 full windows and a partial one
    path = tmp_path / "long.wav"
    sf.write(path, waveform, SAMPLE_RATE, subtype="FLOAT")
    decoded: list[int] = []
    real_load = predictor_module.load_audio

    def recording_load(*args, **kwargs):
        out = real_load(*args, **kwargs)
        decoded.append(len(out))
        return out

    monkeypatch.setattr(predictor_module, "load_audio", recording_load)
    arrays, duration = predictor.predict_source(path)
    window = predictor_module.WINDOW_CHUNKS * predictor.chunk_samples + predictor.chunk_samples - predictor.hop_samples
    assert len(decoded) == 3 and max(decoded) <= window
    assert duration == pytest.approx(len(waveform) / SAMPLE_RATE)
    whole = predictor.predict_waveform(waveform)
    for key, value in whole.items():
        np.testing.assert_allclose(arrays[key], value, atol=1e-5)
    # every chunk of the whole-song cover was scored once, overlapping ones included
    seen: list[int] = []
    real_run = predictor.run_chunks
    monkeypatch.setattr(
        predictor, "run_chunks", lambda tagged, acc: real_run([(i, seen.append(len(c)) or c) for i, c in tagged], acc)
    )
    predictor.predict_source(path)
    assert sum(seen) == len(predictor._chunks(waveform)) == pytest.approx(len(waveform) / predictor.hop_samples, abs=2)


def test_too_long_audio_is_refused_before_decoding(tiny_run, song_files):
    predictor = Predictor.from_checkpoint(tiny_run)
    with pytest.raises(ParameterError, match="over the limit of 2 s"):
        predictor.predict_source(song_files[1], max_seconds=2.0)


def test_bad_batch_size_and_backend_are_named(tiny_run):
    model = build_tiny_model()
    with pytest.raises(ParameterError, match="batch_size=0"):
        Predictor(model, tiny_card(), batch_size=0)
    with pytest.raises(ParameterError, match="--backend 'tpu'"):
        Predictor(model, tiny_card(), backend="tpu")


def test_predict_file_describes_the_song(tiny_run, song_files):
    row = Predictor.from_checkpoint(tiny_run).predict_file(song_files[0])
    assert row["path"] == str(song_files[0]) and row["duration"] == pytest.approx(2.5)
    assert set(row["probs"]) == {"ambient", "jazz", "rock"} and row["label"] in row["probs"]
    assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(row["scores"]) == {"appeal"} and len(row["intervals"]["appeal"]) == 2


def test_a_model_trained_under_bf16_is_served_under_bf16_consistently(tiny_run):
    from encore.inference.backends import bf16_supported

    plain = Predictor.from_checkpoint(tiny_run)
    card = tiny_card(training={"precision": "bfloat16"})
    served = Predictor(plain.model, card, batch_size=3)
    assert served.runner.bf16 is bf16_supported() and plain.runner.bf16 is False
    assert Predictor(plain.model, card, backend="eager").backend == "eager"  # the reference stays float32
    waveforms = [song(seconds, seed=i) for i, seconds in enumerate((0.4, 2.6, 5.0))]
    batch = served.predict_arrays(waveforms)
    for i, waveform in enumerate(waveforms):
        alone = served.predict_waveform(waveform)
        reference = eager_reference(plain.model, waveform, plain.chunk_samples)
        for key in ("class_probs", "tag_probs"):
            np.testing.assert_allclose(batch[key][i], alone[key], atol=1e-5)  # the same alone or in a batch
            np.testing.assert_allclose(alone[key], reference[key], atol=2e-2)  # and close to float32
