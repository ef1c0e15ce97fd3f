"""Song-level refit of the tag and score heads (train.refit_heads)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Ridge
from toy import make_toy, toy_config

from encore.exceptions import ParameterError
from encore.inference import Predictor
from encore.models.card import ChunkSpec, ModelCard, NetworkSpec, RegressionStats
from encore.models.checkpoint import load_model
from encore.models.classifier import EncoreModel
from encore.train.loop import fit
from encore.train.objectives import select_split
from encore.train.refit import _choose_strength, fit_ridge, fit_soft_logistic, refit_checkpoint, refit_heads, song_embeddings

TINY = {
    "frontend": {"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 32, "f_max": 4000.0},
    "backbone": "small_cnn",
    "backbone_kwargs": {"channels": [4, 8, 8, 8], "embedding_dim": 8},
    "label_names": ["low", "mid", "high"],
    "tag_names": ["bright"],
    "regression_names": ["appeal"],
    "dropout": 0.3,
}


def test_soft_logistic_recovers_planted_weights_and_the_penalty_shrinks_them():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 4))
    weight, bias = np.array([[1.5, -0.5], [0.0, 1.0], [-1.0, 0.0], [0.5, 0.5]]), np.array([-1.0, 0.3])
    shares = 1 / (1 + np.exp(-(x @ weight + bias)))  # soft targets: the exact rates
    got_w, got_b = fit_soft_logistic(x, shares, 1e-8)
    np.testing.assert_allclose(got_w, weight, atol=2e-3)
    np.testing.assert_allclose(got_b, bias, atol=2e-3)
    shrunk, _ = fit_soft_logistic(x, shares, 0.1)
    assert np.abs(shrunk).sum() < 0.8 * np.abs(got_w).sum()


def test_ridge_is_sklearns_ridge_on_the_mean_squared_error():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((200, 2))
    weight, bias = fit_ridge(x, y, 0.3)
    reference = Ridge(alpha=0.3 * 200).fit(x, y)  # sklearn penalises the summed, not the mean, squared error
    np.testing.assert_allclose(weight, reference.coef_.T, atol=1e-8)
    np.testing.assert_allclose(bias, reference.intercept_, atol=1e-8)


def test_noisier_targets_get_a_stronger_penalty():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 40))
    signal = x[:, :1] @ np.ones((1, 1))
    mse = lambda pred, truth: float(np.mean((pred - truth) ** 2))  # noqa: E731
    clean, _ = _choose_strength(fit_ridge, mse, x, signal + 0.1 * rng.standard_normal((300, 1)), n_folds=5, seed=0)
    noisy, _ = _choose_strength(fit_ridge, mse, x, signal + 5.0 * rng.standard_normal((300, 1)), n_folds=5, seed=0)
    assert noisy > 10 * clean


def _toy_model(n_members: int = 1, band_statistics: bool = False) -> EncoreModel:
    torch.manual_seed(0)
    return EncoreModel(**TINY, n_members=n_members, band_statistics=band_statistics).eval()


@pytest.mark.parametrize(
    ("n_members", "band_statistics"),
    [(1, False), (2, False), (1, True), (2, True)],
)
def test_refit_heads_are_exactly_the_fitted_song_models_when_served(n_members, band_statistics):
    manifest, waveforms = make_toy()
    train = select_split(manifest, "train", waveforms)
    model = _toy_model(n_members, band_statistics)
    assert model.embedding_dim == 8 * n_members + (3 * 32 if band_statistics else 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = (train.scores - np.nanmean(train.scores, 0)) / np.nanstd(train.scores, 0)
    report = refit_heads(model, train, ["tags", "regression"], chunk_samples=8000, hop_samples=4000, scores=scores)
    assert report["tags"]["songs"] == len(train.track_ids) and report["regression"][0]["songs"] == len(train.track_ids)
    # only the refit heads (and their wide paths on the band statistics) changed
    for name, value in model.state_dict().items():
        changed = not torch.equal(value, before[name])
        assert changed == name.startswith(("heads.tags", "heads.regression", "band_heads.")), name
    # the head is the logistic model fitted on the standardised song embeddings, written back
    embeddings = song_embeddings(model, train.waveforms, chunk_samples=8000, hop_samples=4000)
    spread = embeddings.std(0)
    standard = (embeddings - embeddings.mean(0)) / np.where(spread > 1e-8, spread, 1.0)  # dead units stay 0
    weight, bias = fit_soft_logistic(standard, train.tags.astype(np.float64), report["tags"]["strength"])
    expected_logits = standard @ weight + bias
    card = ModelCard(
        network=NetworkSpec(**{**TINY, "n_members": n_members, "band_statistics": band_statistics}),
        chunk=ChunkSpec(seconds=1.0, hop_seconds=0.5),
        aggregate="mean_probs",
        aggregate_tags="mean_logits",
        regression_stats=RegressionStats(mean=[0.0], std=[1.0]),
    )
    served = Predictor(model, card, backend="eager").predict_arrays(train.waveforms)
    np.testing.assert_allclose(served["tag_probs"], 1 / (1 + np.exp(-expected_logits)), atol=1e-4)
    ridge_w, ridge_b = fit_ridge(standard, scores, report["regression"][0]["strength"])
    np.testing.assert_allclose(served["scores"], standard @ ridge_w + ridge_b, atol=1e-4)


def test_songs_without_tags_are_left_out_and_unknown_heads_are_refused():
    manifest, waveforms = make_toy()
    train = select_split(manifest, "train", waveforms)
    train.tags = train.tags.copy()
    train.tags[:5] = np.nan
    report = refit_heads(_toy_model(), train, ["tags"], chunk_samples=8000, hop_samples=8000, scores=train.scores)
    assert report["tags"]["songs"] == len(train.track_ids) - 5 and "regression" not in report
    with pytest.raises(ParameterError, match=r"\['class'\] cannot be refit; choose from \['tags', 'regression'\]"):
        refit_heads(_toy_model(), train, ["class"], chunk_samples=8000, hop_samples=8000, scores=train.scores)


def test_a_run_with_refit_heads_records_it_and_every_backend_serves_it(tmp_path):
    manifest, waveforms = make_toy()
    config = toy_config(**{"train.epochs": 2, "train.refit_heads": ["tags", "regression"], "train.chunk_hop_seconds": 0.5})
    result = fit(manifest, waveforms, config, tmp_path / "refit")
    _, card = load_model(result.checkpoint)
    assert card.aggregate_tags == "mean_logits" and card.aggregate == "mean_probs"
    assert card.refit is not None and set(card.refit) == {"tags", "regression"} and card.refit["tags"]["strength"] > 0
    assert "validation_before_refit" in card.metrics and "val_accuracy" in card.metrics["validation"]
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"][:3]]
    eager = Predictor.from_checkpoint(result.checkpoint, backend="eager").predict_arrays(songs)
    onnx = Predictor.from_checkpoint(result.checkpoint, backend="onnx").predict_arrays(songs)
    for key in ("class_probs", "tag_probs", "scores"):
        np.testing.assert_allclose(onnx[key], eager[key], atol=1e-4, err_msg=key)
    # the same run without the refit keeps the heads as trained (and averages tag probabilities)
    plain = fit(manifest, waveforms, toy_config(**{"train.epochs": 2, "train.chunk_hop_seconds": 0.5}), tmp_path / "plain")
    _, plain_card = load_model(plain.checkpoint)
    assert plain_card.refit is None and plain_card.aggregate_tags is None
    plain_probs = Predictor.from_checkpoint(plain.checkpoint, backend="eager").predict_arrays(songs)
    np.testing.assert_allclose(plain_probs["class_probs"], eager["class_probs"], atol=1e-6)  # the class head is untouched
    assert not np.allclose(plain_probs["tag_probs"], eager["tag_probs"])


def test_band_statistics_leave_training_alone_and_the_refit_fits_their_path(tmp_path):
    manifest, waveforms = make_toy()
    settings = {
        "train.epochs": 2,
        "train.refit_heads": ["tags", "regression"],
        "train.chunk_hop_seconds": 0.5,
        "train.precision": "auto",
    }  # bf16 where the CPU has it: the embedding dtypes then differ
    wide_settings = {"model.band_statistics": True}
    wide = fit(manifest, waveforms, toy_config(**settings, **wide_settings), tmp_path / "wide")
    plain = fit(manifest, waveforms, toy_config(**settings), tmp_path / "plain")
    model, card = load_model(wide.checkpoint)
    assert card.network.band_statistics is True
    assert model.band_heads["regression"].weight.shape == (1, 3 * 32)
    # the path is zero in training, so the epochs are the plain run's to the last digit
    wide_log, plain_log = (pd.read_csv(r.run_dir / "metrics.csv") for r in (wide, plain))
    losses = [c for c in plain_log.columns if c.startswith(("train_", "val_"))]
    assert "train_loss" in losses and "val_accuracy" in losses
    pd.testing.assert_frame_equal(wide_log[losses], plain_log[losses])
    # the refit wrote the wide paths of the tag and score heads; the class head has none
    assert set(model.band_heads) == {"tags", "regression"}
    assert all(head.weight.abs().sum() > 0 for head in model.band_heads.values())
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"][:3]]
    eager = Predictor.from_checkpoint(wide.checkpoint, backend="eager").predict_arrays(songs)
    onnx = Predictor.from_checkpoint(wide.checkpoint, backend="onnx").predict_arrays(songs)
    for key in ("class_probs", "tag_probs", "scores"):
        np.testing.assert_allclose(onnx[key], eager[key], atol=1e-4, err_msg=key)
    plain_probs = Predictor.from_checkpoint(plain.checkpoint, backend="eager").predict_arrays(songs)
    np.testing.assert_allclose(plain_probs["class_probs"], eager["class_probs"], atol=1e-6)
    assert not np.allclose(plain_probs["scores"], eager["scores"])


def test_a_runs_heads_refit_under_another_wide_path_are_what_a_run_with_it_writes(tmp_path):
    manifest, waveforms = make_toy()
    settings = {
        "train.epochs": 2,
        "train.refit_heads": ["tags", "regression"],
        "train.chunk_hop_seconds": 0.5,
        "model.band_statistics": True,
    }
    bands = fit(manifest, waveforms, toy_config(**settings), tmp_path / "bands")
    plain = fit(manifest, waveforms, toy_config(**{**settings, "model.band_statistics": False}), tmp_path / "plain")
    train = select_split(manifest, "train", waveforms)
    model, card = refit_checkpoint(plain.checkpoint, train, band_statistics=True)
    written, written_card = load_model(bands.checkpoint)
    assert card.network.band_statistics is True
    assert card.refit is not None and written_card.refit is not None
    assert card.refit["tags"]["strength"] == written_card.refit["tags"]["strength"]
    for name, value in written.state_dict().items():  # the network to the last bit; the refit heads to rounding
        refit = name.startswith(("heads.tags", "heads.regression", "band_heads."))
        torch.testing.assert_close(
            model.state_dict()[name], value, rtol=1e-4 if refit else 0, atol=1e-5 if refit else 0, msg=name
        )
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"][:3]]
    got = Predictor(model, card, backend="eager").predict_arrays(songs)
    want = Predictor.from_checkpoint(bands.checkpoint, backend="eager").predict_arrays(songs)
    for key in ("class_probs", "tag_probs", "scores"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)
    # and back to the backbone alone: the band paths are gone, the network is the same
    bare, _ = refit_checkpoint(bands.checkpoint, train, band_statistics=False)
    assert not bare.band_heads and bare.embedding_dim == bare.deep_dim
    with pytest.raises(ParameterError, match=r"trained without train.refit_heads"):
        refit_checkpoint(
            fit(manifest, waveforms, toy_config(**{"train.epochs": 1}), tmp_path / "none").checkpoint, train, band_statistics=True
        )
    torch.testing.assert_close(bare.heads["regression"].weight, load_model(plain.checkpoint)[0].heads["regression"].weight)
