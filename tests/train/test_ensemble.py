"""Deep ensembles in one model (model.members): each member learns on its own loss, the
model's output is their mean, and every inference path treats the ensemble as one model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy import make_toy, toy_config

from encore.exceptions import ParameterError
from encore.inference import Predictor
from encore.models.checkpoint import load_model
from encore.models.classifier import EncoreModel
from encore.train.loop import fit
from encore.train.objectives import compute_losses

KWARGS = {
    "frontend": {"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 32, "f_max": 4000.0},
    "backbone": "small_cnn",
    "backbone_kwargs": {"channels": [4, 8, 8, 8], "embedding_dim": 8},
    "label_names": ["a", "b", "c"],
    "tag_names": ["x", "y"],
    "regression_names": ["appeal"],
    "dropout": 0.0,
}


def _single_member(ensemble: EncoreModel, k: int) -> EncoreModel:
    """A one-network model holding member ``k``'s backbone and head weights."""
    single = EncoreModel(**KWARGS)
    single.frontend.load_state_dict(ensemble.frontend.state_dict())
    single.input_norm.load_state_dict(ensemble.input_norm.state_dict())
    single.backbone.load_state_dict(ensemble.backbone[k].state_dict())
    for name, head in single.heads.items():
        head.weight.data.copy_(ensemble.heads[name].weight[k])
        head.bias.data.copy_(ensemble.heads[name].bias[k])
    return single


def test_the_output_is_the_members_mean_and_each_member_is_a_whole_network():
    torch.manual_seed(0)
    ensemble = EncoreModel(**KWARGS, n_members=3).eval()
    x = torch.randn(4, 8000) * 0.1
    with torch.no_grad():
        mean, members = ensemble(x), ensemble(x, members=True)
        assert members["class"].shape == (4, 3, 3) and members["tags"].shape == (4, 3, 2)
        assert members["regression"].shape == (4, 3, 1) and ensemble.embedding_dim == 24
        for name in mean:
            torch.testing.assert_close(mean[name], members[name].mean(dim=1))
        for k in range(3):
            alone = _single_member(ensemble, k).eval()(x)
            for name in alone:
                torch.testing.assert_close(members[name][:, k], alone[name], atol=1e-5, rtol=1e-5)
    # the members differ: they start from different weights
    assert not torch.allclose(members["class"][:, 0], members["class"][:, 1])


def test_one_member_keeps_the_single_network_layout():
    torch.manual_seed(0)
    model = EncoreModel(**KWARGS)
    assert model.n_members == 1 and isinstance(model.heads["class"], torch.nn.Linear)
    assert "backbone.dense.0.weight" in model.state_dict()  # checkpoints written before ensembles still load
    out = model.eval()(torch.randn(2, 8000), members=True)
    assert out["class"].shape == (2, 1, 3)
    with pytest.raises(ParameterError, match="n_members=0 must be a positive integer"):
        EncoreModel(**KWARGS, n_members=0)


def test_each_member_gets_the_gradient_it_would_get_alone():
    torch.manual_seed(0)
    ensemble = EncoreModel(**KWARGS, n_members=2).eval()  # eval: BatchNorm statistics fixed, no dropout
    x = torch.randn(6, 8000) * 0.1
    classes = torch.tensor([0, 1, 2, 0, 1, 2])
    tags, scores = torch.rand(6, 2), torch.randn(6, 1)
    losses = compute_losses(ensemble(x, members=True), classes, classes, 1.0, tags, scores, None)
    sum(losses.values()).backward()
    for k in range(2):
        single = _single_member(ensemble, k).eval()
        alone = compute_losses(single(x), classes, classes, 1.0, tags, scores, None)
        sum(alone.values()).backward()
        for (name, p_single), p_member in zip(single.backbone.named_parameters(), ensemble.backbone[k].parameters(), strict=True):
            # the ensemble's loss is the members' mean, so each member's gradient is its own over n_members
            torch.testing.assert_close(p_member.grad * 2, p_single.grad, atol=1e-5, rtol=1e-4, msg=name)
        torch.testing.assert_close(
            ensemble.heads["tags"].weight.grad[k] * 2, single.heads["tags"].weight.grad, atol=1e-5, rtol=1e-4
        )


def test_an_ensemble_trains_saves_and_serves_through_every_backend(tmp_path):
    manifest, waveforms = make_toy()
    config = toy_config(**{"model.members": 2, "train.epochs": 3})
    result = fit(manifest, waveforms, config, tmp_path / "ens")
    model, card = load_model(result.checkpoint)
    assert model.n_members == 2 and card.network.n_members == 2
    assert np.isfinite(result.history[-1]["train_loss"])
    songs = [waveforms[t] for t in manifest.subset("test")["track_id"][:3]]
    eager = Predictor.from_checkpoint(result.checkpoint, backend="eager").predict_arrays(songs)
    for backend in ("torch", "onnx"):
        got = Predictor.from_checkpoint(result.checkpoint, backend=backend).predict_arrays(songs)
        for key in ("class_probs", "tag_probs", "scores"):
            np.testing.assert_allclose(
                got[key], eager[key], atol=2e-2 if backend == "torch" else 1e-4, err_msg=f"{backend} {key}"
            )
    # an explanation of the ensemble explains its mean output
    from encore.explain.song import explain_waveform

    explanation = explain_waveform(Predictor.from_checkpoint(result.checkpoint), songs[0], n_segments=4, n_bands=4)
    assert np.isfinite(explanation.to_dict()["segments"][0]["share"])
    # members=1 and members=2 runs on the same seed: the ensemble is not the single network
    single = fit(manifest, waveforms, toy_config(**{"train.epochs": 3}), tmp_path / "one")
    alone = Predictor.from_checkpoint(single.checkpoint, backend="eager").predict_arrays(songs)
    assert not np.allclose(alone["class_probs"], eager["class_probs"])


def test_transfer_needs_the_same_number_of_members(tmp_path):
    manifest, waveforms = make_toy()
    source = fit(manifest, waveforms, toy_config(**{"train.epochs": 1}), tmp_path / "src")
    with pytest.raises(ParameterError, match="model.members 1 but this run asks for 2"):
        fit(
            manifest,
            waveforms,
            toy_config(**{"train.epochs": 1, "model.members": 2, "train.init_from": str(source.run_dir)}),
            tmp_path / "dst",
        )


def test_a_training_step_moves_each_member_as_it_would_move_alone():
    """Same batch, clipping active: after a step each member equals its solo twin.

    The ensemble's loss is the members' mean, so its member gradients are the solo ones
    over n_members; plain SGD at n_members times the rate takes the same step (AdamW, the
    loop's optimiser, does not see a constant factor at all).
    """
    from encore.train.loop import clip_gradients

    torch.manual_seed(0)
    ensemble = EncoreModel(**KWARGS, n_members=2).train()
    singles = [_single_member(ensemble, k).train() for k in range(2)]
    for model in (ensemble, *singles):  # the shared input norm learns from every member: out of this comparison
        model.input_norm.requires_grad_(False)
    x = torch.randn(8, 8000) * 0.1
    classes = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    tags, scores = torch.rand(8, 2), torch.randn(8, 1)
    max_norm = 0.05  # far below the gradients' norms, so every group is clipped
    for model, outputs, lr in [(ensemble, lambda m: m(x, members=True), 0.2)] + [(s, lambda m: m(x), 0.1) for s in singles]:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        losses = compute_losses(outputs(model), classes, classes, 1.0, tags, scores, None)
        sum(losses.values()).backward()
        norm_before = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.backbone.parameters()]))
        clip_gradients(model, max_norm)
        norm_after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.backbone.parameters()]))
        assert norm_after < norm_before
        optimizer.step()
    for k, single in enumerate(singles):
        for (name, p_single), p_member in zip(single.backbone.named_parameters(), ensemble.backbone[k].parameters(), strict=True):
            torch.testing.assert_close(p_member, p_single, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(ensemble.heads["class"].weight[k], single.heads["class"].weight, atol=1e-6, rtol=1e-5)
