"""Pitch shift and time stretch on the log-mel, inside the model, in training only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encore.features.logmel import mel_frequencies
from encore.models.classifier import EncoreModel

SAMPLE_RATE = 16000


def _model(**augment) -> EncoreModel:
    return EncoreModel(
        frontend={"sample_rate": SAMPLE_RATE, "n_mels": 64},
        backbone="small_cnn",
        label_names=["a", "b"],
        spec_augment={"time_masks": 0, "freq_masks": 0, **augment},
    )


def _tone_log_mel(model: EncoreModel, hz: float) -> torch.Tensor:
    t = torch.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    with torch.no_grad():
        return model.frontend(torch.sin(2 * np.pi * hz * t).unsqueeze(0))


@pytest.mark.parametrize("semitones", [12.0, -12.0, 7.0])
def test_pitch_shift_moves_a_tone_to_the_shifted_band(semitones):
    model = _model(pitch_shift_semitones=12.0)
    log_mel = _tone_log_mel(model, 1000.0)
    shifted = model.spec_augment.warp(log_mel, semitones=torch.tensor([semitones]))
    centers = mel_frequencies(66, f_min=0.0, f_max=SAMPLE_RATE / 2)[1:-1]
    expected = int(np.argmin(np.abs(np.log2(centers) - np.log2(1000.0 * 2 ** (semitones / 12)))))
    peak = int(shifted[0].mean(dim=1).argmax())
    assert abs(peak - expected) <= 1
    assert abs(int(log_mel[0].mean(dim=1).argmax()) - peak) >= 3  # it did move


def test_time_stretch_moves_an_event_toward_the_centre_when_faster():
    model = _model(time_stretch=0.3)
    log_mel = torch.full((1, 64, 101), -50.0)
    log_mel[:, :, 80] = 0.0  # a click at frame 80; the centre is frame 50
    faster = model.spec_augment.warp(log_mel, rates=torch.tensor([1.25]))
    assert int(faster[0].mean(dim=0).argmax()) == 50 + round((80 - 50) / 1.25)


def test_warps_are_training_only_and_random_per_item():
    model = _model(time_stretch=0.2, pitch_shift_semitones=2.0)
    log_mel = torch.randn(4, 64, 120)
    model.eval()
    assert torch.equal(model.spec_augment(log_mel), log_mel)
    model.train()
    torch.manual_seed(0)
    out = model.spec_augment(log_mel.repeat(1, 1, 1)[:1].expand(4, -1, -1).contiguous())
    assert not torch.allclose(out[0], out[1])  # each item gets its own rate and shift


def test_warp_options_reach_the_model_from_the_config():
    from encore.config import load_config
    from encore.data.manifest import Manifest
    from encore.train.loop import _network

    import pandas as pd

    config = load_config(None, {"augment.time_stretch": 0.1, "augment.pitch_shift_semitones": 2})
    manifest = Manifest(
        frame=pd.DataFrame({"track_id": ["a"], "path": ["a.wav"], "artist": ["x"], "split": ["train"]}), label_names=["a", "b"]
    )
    model = EncoreModel(**_network(config, manifest).model_kwargs())
    assert model.spec_augment.time_stretch == 0.1 and model.spec_augment.pitch_shift_semitones == 2
