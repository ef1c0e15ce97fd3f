"""Novelty: every prediction says how unlike the training songs a song is, calibrated on held-out songs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from toy import SAMPLE_RATE, make_toy, toy_config

from encore.evaluate.runs import novelty_rate
from encore.inference import Predictor
from encore.models.card import NoveltyCalibration
from encore.models.checkpoint import load_model
from encore.models.novelty import fit_whitening, whitened_distance
from encore.train.loop import fit
from encore.train.refit import out_of_fold_distances, song_embeddings


@pytest.fixture(scope="module")
def novelty_run(tmp_path_factory):
    manifest, waveforms = make_toy()
    result = fit(manifest, waveforms, toy_config(**{"train.epochs": 6}), tmp_path_factory.mktemp("novelty") / "run")
    return result, manifest, waveforms


def unlike_songs() -> list[np.ndarray]:
    """Nothing like the toy's steady tones: loud noise bursts and a fast chirp."""
    rng = np.random.default_rng(1)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    bursts = (rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0)).astype(np.float32)
    chirp = np.sign(np.sin(2 * np.pi * (100 + 1200 * t) * t)).astype(np.float32)
    return [bursts, chirp]


def test_the_card_holds_a_calibrated_novelty_and_new_kinds_of_audio_are_flagged(novelty_run):
    result, manifest, waveforms = novelty_run
    model, card = load_model(result.checkpoint)
    novelty = card.novelty
    assert novelty.fitted and novelty.reference == "validation" and novelty.reference_songs == 12
    assert novelty.features == model.deep_dim + 3 * 32 and novelty.quantiles == sorted(novelty.quantiles)
    predictor = Predictor.from_checkpoint(result.checkpoint)
    test_rows = [
        predictor.describe(predictor.predict_waveform(waveforms[t]))["novelty"] for t in manifest.subset("test")["track_id"]
    ]
    assert sum(row["novel"] for row in test_rows) <= 2  # held-out songs of the same kind: mostly familiar
    odd_rows = [predictor.describe(predictor.predict_waveform(song))["novelty"] for song in unlike_songs()]
    assert all(row["novel"] and row["score"] == 1.0 for row in odd_rows), odd_rows
    assert min(r["distance"] for r in odd_rows) > max(r["distance"] for r in test_rows)


def test_a_songs_novelty_is_its_mean_embeddings_distance_in_every_backend(novelty_run):
    result, manifest, waveforms = novelty_run
    model, card = load_model(result.checkpoint)
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"][:3]] + unlike_songs()
    eager = Predictor.from_checkpoint(result.checkpoint, backend="eager")
    chunk, hop = eager.chunk_samples, eager.hop_samples
    features = song_embeddings(model, songs, chunk_samples=chunk, hop_samples=hop, features=model.novelty_features)
    z = (features - model.novelty.center.numpy()) @ model.novelty.whitening.numpy().T
    expected = (z**2).sum(axis=1)
    for backend in ("eager", "torch", "onnx"):
        got = Predictor.from_checkpoint(result.checkpoint, backend=backend).predict_arrays(songs)["novelty_distance"]
        np.testing.assert_allclose(got, expected, rtol=1e-3, err_msg=backend)


def test_without_novelty_components_there_is_no_novelty(tmp_path):
    manifest, waveforms = make_toy()
    result = fit(manifest, waveforms, toy_config(**{"train.epochs": 1, "model.novelty": False}), tmp_path / "run")
    model, card = load_model(result.checkpoint)
    assert model.novelty is None and card.novelty is None
    predictor = Predictor.from_checkpoint(result.checkpoint)
    assert "novelty" not in predictor.describe(predictor.predict_waveform(waveforms["test-low-0-0"]))


def test_without_validation_songs_the_threshold_is_set_on_out_of_fold_distances():
    """A fit's own songs lie nearer to it than new ones: with as many features as songs, a
    threshold at their 99th percentile flags nearly every new song of the same kind, while
    one at the 99th percentile of out-of-fold distances flags about 1 %."""
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((40, 40))
    train, new = rng.standard_normal((100, 40)) @ mix, rng.standard_normal((4000, 40)) @ mix
    center, whitening, _ = fit_whitening(train)

    def distance(x):
        return whitened_distance(x, center, whitening)

    in_sample = np.percentile(distance(train), 99)
    out_of_fold = np.percentile(out_of_fold_distances(train), 99)
    assert np.mean(distance(new) > in_sample) > 0.2
    assert 0.002 < np.mean(distance(new) > out_of_fold) < 0.04


def test_a_run_without_validation_songs_calibrates_its_novelty_out_of_fold(tmp_path):
    manifest, waveforms = make_toy()
    frame = manifest.frame.copy()
    frame.loc[frame["split"] == "val", "split"] = "train"
    result = fit(dataclasses.replace(manifest, frame=frame), waveforms, toy_config(**{"train.epochs": 1}), tmp_path / "run")
    novelty = load_model(result.checkpoint)[1].novelty
    assert novelty.fitted and novelty.reference == "out-of-fold training"
    assert novelty.reference_songs == novelty.train_songs == int((frame["split"] == "train").sum())


def test_the_evaluation_counts_the_held_out_songs_the_threshold_flags():
    scale = NoveltyCalibration(fitted=True, quantiles=[0.0, 1.0, 2.0], threshold=3.5, threshold_percentile=99.0)
    rate = novelty_rate(np.array([1.0, 2.0, 5.0, 0.5]), scale)
    assert (rate["n"], rate["flagged"], rate["share"], rate["expected_share"]) == (4, 1, 0.25, pytest.approx(0.01))
    assert rate["ci_low"] < 0.25 < rate["ci_high"] and 0.0 < rate["ci_low"]
    assert novelty_rate(np.array([1.0]), NoveltyCalibration(fitted=False, reason="too few")) is None
