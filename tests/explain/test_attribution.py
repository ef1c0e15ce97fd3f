"""Attribution plumbing on a tiny random CNN: overlapping chunks, the picture maps, and
chunk-local occlusion against occluding the whole song."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_cnn import SAMPLE_RATE, build_tiny_model, tiny_card

from encore.explain import explain_waveform
from encore.explain.attribution import grid_slices, occlusion, prepare_song, target_function
from encore.inference import Predictor
from encore.models.card import ModelCard

SECOND = SAMPLE_RATE


def song(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 1500) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def card(hop: float | None) -> ModelCard:
    return tiny_card(chunk={"seconds": 1.0, "hop_seconds": hop})


@pytest.mark.parametrize("hop", [None, SECOND // 2, 3 * SECOND // 10])
@pytest.mark.parametrize("seconds", [0.7, 4.3, 5.0])
def test_picture_maps(hop, seconds):
    model = build_tiny_model()
    prepared = prepare_song(model, song(seconds), chunk_samples=SECOND, hop_samples=hop)
    n_mels, n_frames = prepared.picture(prepared.chunks).shape
    assert prepared.frame_seconds.size == n_frames and np.all(np.diff(prepared.frame_seconds) > 0)
    assert prepared.frame_seconds[-1] < seconds
    hop_s = model.frontend.hop_length / SAMPLE_RATE
    step = hop or SECOND
    covered = min(seconds, ((len(prepared.chunks) - 1) * step + SECOND) / SAMPLE_RATE)  # a short tail is dropped
    assert n_frames == pytest.approx(covered / hop_s, abs=len(prepared.chunks) + 1)  # one picture frame per STFT hop
    rng = torch.Generator().manual_seed(1)
    picture = torch.randn(n_mels, n_frames, generator=rng, dtype=torch.float64)
    copies = prepared.scatter(picture)
    assert torch.equal(torch.from_numpy(prepared.picture(copies)), picture)  # each frame's own copy
    values = torch.randn(copies.shape, generator=rng, dtype=torch.float64)
    # fold is scatter's adjoint: the sum over copies
    assert float((copies * values).sum()) == pytest.approx(float((picture.numpy() * prepared.fold(values)).sum()), rel=1e-9)
    if hop is not None and seconds > 2:  # overlapping chunks hear most frames twice or more
        assert (prepared.index >= 0).sum() > 1.5 * n_frames


@pytest.mark.parametrize("hop", [None, SECOND // 2])
@pytest.mark.parametrize("head, index", [("class", 1), ("tags", 2), ("regression", 0)])
def test_chunk_local_occlusion_equals_occluding_the_whole_song(hop, head, index):
    model = build_tiny_model(seed=3)
    prepared = prepare_song(model, song(4.6, seed=2), chunk_samples=SECOND, hop_samples=hop)
    f = target_function(model, card(None), head, index)
    fast = occlusion(f, prepared, n_segments=6, n_bands=3)
    picture = prepared.picture(prepared.chunks)
    times, bands = grid_slices(picture.shape[1], picture.shape[0], n_segments=6, n_bands=3)
    with torch.no_grad():
        base = float(f(prepared.chunks.unsqueeze(0))[0])
        for t in times:
            for b in bands:
                mask = torch.zeros(picture.shape, dtype=torch.bool)
                mask[b, t] = True
                occluded = torch.where(prepared.scatter(mask), float(picture.mean()), prepared.chunks)
                drop = base - float(f(occluded.unsqueeze(0))[0])
                assert fast[b, t].sum() == pytest.approx(drop, abs=2e-4)
                assert np.ptp(fast[b, t]) < 1e-9  # spread evenly over the cell


def test_explanation_value_is_the_predictors_with_overlapping_chunks():
    model = build_tiny_model(seed=5)
    wave = song(5.5, seed=4)
    for hop in (None, 0.5):
        predictor = Predictor(model, card(hop))
        probs = predictor.predict_waveform(wave)["class_probs"]
        explanation = explain_waveform(predictor, wave, target="jazz", method="occlusion", n_segments=4, n_bands=2)
        assert explanation.value == pytest.approx(float(probs[1]), abs=1e-5)
    assert predictor.hop_samples == SECOND // 2
