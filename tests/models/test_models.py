import numpy as np
import pytest
import torch

from encore.exceptions import CheckpointError, ParameterError
from encore.models import EncoreModel, create_model, list_models
from encore.config import FeatureConfig
from encore.models.card import ChunkSpec, ModelCard, NetworkSpec
from encore.models.checkpoint import load_model, save_checkpoint
from encore.models.classifier import mel_band_statistics

FRONTEND = {"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 64}


SMALL = {  # ported networks keep their published sizes; the rest are shrunk to keep the test short
    "musicnn": {"midend_channels": 8, "embedding_dim": 16},
    "musicnn_vgg": {"channels": 8, "n_frames": 188},
}


@pytest.mark.parametrize("name", list_models())
def test_forward_every_registered_model(name):
    torch.manual_seed(0)
    small = SMALL.get(name, {"channels": (8, 8, 16, 16, 16, 16, 16)[: 4 if name == "small_cnn" else 7], "embedding_dim": 16})
    backbone = create_model(name, n_mels=64, **small).eval()
    emb = backbone(torch.randn(3, 64, 188))
    assert emb.shape == (3, backbone.embedding_dim)
    assert emb.shape[1] == small.get("embedding_dim", emb.shape[1])
    assert torch.isfinite(emb).all()


def test_registry_has_the_paper_models_and_a_cpu_default():
    assert {"small_cnn", "short_chunk_cnn", "short_chunk_resnet", "musicnn", "musicnn_vgg"} <= set(list_models())
    with pytest.raises(ParameterError, match="unknown model"):
        create_model("no_such_net", n_mels=64)
    with pytest.raises(ParameterError, match="bad arguments"):
        create_model("small_cnn", n_mels=64, widht=3)


def make_model(**kwargs):
    torch.manual_seed(0)
    return EncoreModel(
        frontend=FRONTEND,
        backbone="small_cnn",
        backbone_kwargs={"channels": [8, 16, 16, 16], "embedding_dim": 16},
        label_names=["a", "b", "c"],
        tag_names=["x", "y"],
        regression_names=["appeal"],
        **kwargs,
    )


def test_heads_return_logits_of_the_right_shapes():
    model = make_model().eval()
    out = model(torch.randn(2, 48000) * 0.1)
    assert out["class"].shape == (2, 3) and out["tags"].shape == (2, 2) and out["regression"].shape == (2, 1)
    # logits, not probabilities: a softmax inside the model would make rows sum to 1
    assert not torch.allclose(out["class"].sum(1), torch.ones(2))


def test_batch_consistency_in_eval_mode():
    model = make_model().eval()
    x = torch.randn(4, 48000) * 0.1
    with torch.no_grad():
        batch = model(x)["class"]
        single = torch.cat([model(x[i : i + 1])["class"] for i in range(4)])
    torch.testing.assert_close(batch, single, atol=1e-4, rtol=1e-4)


def test_spec_augment_only_in_training():
    model = make_model(spec_augment={"time_masks": 2, "time_mask_frames": 20, "freq_masks": 2, "freq_mask_bins": 10})
    x = torch.randn(2, 48000) * 0.1
    model.eval()
    with torch.no_grad():
        a, b = model(x)["class"], model(x)["class"]
    torch.testing.assert_close(a, b)
    log_mel = model.log_mel(x)
    model.spec_augment.train()
    torch.manual_seed(1)
    assert not torch.equal(model.spec_augment(log_mel), log_mel)


def test_checkpoint_round_trip_gives_the_same_logits(tmp_path):
    model = make_model().eval()
    network = NetworkSpec(
        frontend=FeatureConfig(**FRONTEND),
        backbone="small_cnn",
        backbone_kwargs={"channels": [8, 16, 16, 16], "embedding_dim": 16},
        label_names=["a", "b", "c"],
        tag_names=["x", "y"],
        regression_names=["appeal"],
    )
    path = save_checkpoint(tmp_path / "checkpoint.pt", model, ModelCard(network=network, chunk=ChunkSpec(seconds=3.0)))
    loaded, loaded_card = load_model(path)
    x = torch.randn(2, 48000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(model(x)["class"], loaded(x)["class"])
    assert loaded_card.chunk.seconds == 3.0 and loaded_card.chunk_samples == 48000
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_checkpoints_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_model(junk)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "nocard.pt")
    with pytest.raises(CheckpointError, match="no model card"):
        load_model(tmp_path / "nocard.pt")


@pytest.mark.parametrize("block_name", ["ConvBlock", "ResBlock"])
def test_relu_after_pooling_gives_the_textbook_block_and_its_gradients(block_name):
    from encore.models import cnn

    torch.manual_seed(0)
    block = getattr(cnn, block_name)(3, 5).train()
    x = torch.randn(2, 3, 8, 12, requires_grad=True)
    out = block(x)
    if block_name == "ConvBlock":
        textbook = block.pool(torch.relu(block.bn(block.conv(x))))
    else:
        inner = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        textbook = block.pool(torch.relu(inner + block.shortcut(x)))
    torch.testing.assert_close(out, textbook)
    weight = torch.randn_like(out)
    grads = torch.autograd.grad((out * weight).sum(), [x, *block.parameters()])
    expected = torch.autograd.grad((textbook * weight).sum(), [x, *block.parameters()])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_band_statistics_are_mean_spread_and_flux_per_band():
    x = torch.randn(2, 5, 40, dtype=torch.float64)
    stats = mel_band_statistics(x)
    ref = x.numpy()
    np.testing.assert_allclose(stats[:, :5].numpy(), ref.mean(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[:, 5:10].numpy(), ref.std(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[:, 10:].numpy(), np.abs(np.diff(ref, axis=-1)).mean(-1), rtol=1e-5, atol=1e-6)
    # the flux sees the order of the frames; the mean and the spread do not
    shuffled = mel_band_statistics(x[..., torch.randperm(40)])
    torch.testing.assert_close(shuffled[:, :10], stats[:, :10], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(shuffled[:, 10:], stats[:, 10:])


def test_the_band_statistics_path_is_silent_until_set_and_only_the_song_heads_read_it():
    plain, wide = make_model().eval(), make_model(band_statistics=True).eval()
    wide.load_state_dict(plain.state_dict(), strict=False)
    assert set(wide.band_heads) == {"tags", "regression"} and wide.embedding_dim == 16 + 3 * 64
    assert not any(p is wide.band_heads["tags"].weight for p in wide.parameters())  # out of gradient descent's reach
    x = torch.randn(2, 48000) * 0.1
    with torch.no_grad():
        before, out = plain(x), wide(x)
        for key in out:
            torch.testing.assert_close(out[key], before[key])
        wide.band_heads["tags"].weight[0, 5] = 1.0  # the mean of band 5
        wide.band_heads["regression"].weight[0, 64 + 5] = -1.0  # its spread
        after = wide(x)
        stats = mel_band_statistics(wide.log_mel(x))
    torch.testing.assert_close(after["class"], before["class"])
    torch.testing.assert_close(after["tags"][:, 0] - before["tags"][:, 0], stats[:, 5])
    torch.testing.assert_close(after["regression"][:, 0] - before["regression"][:, 0], -stats[:, 64 + 5])


def test_musicnn_has_the_published_shapes_and_normalises_its_own_input():
    from encore.models.musicnn import MUSICNN_CHUNK_SECONDS, MUSICNN_FRONTEND

    model = EncoreModel(frontend=MUSICNN_FRONTEND, backbone="musicnn", tag_names=[f"t{i}" for i in range(50)]).eval()
    assert isinstance(model.input_norm, torch.nn.Identity)  # its own one-channel BatchNorm is the first layer
    assert model.backbone.timbral[0].conv.weight.shape == (204, 1, 7, 38)
    assert model.backbone.timbral[1].conv.weight.shape == (204, 1, 7, 67)
    assert [b.conv.weight.shape[2] for b in model.backbone.temporal] == [128, 64, 32]
    assert model.backbone.pool_bn.num_features == 1506 and model.backbone.pool_bn.eps == 1e-3
    waveform = torch.randn(2, int(round(MUSICNN_CHUNK_SECONDS * 16000))) * 0.1
    assert model.log_mel(waveform).shape == (2, 96, 187)
    assert model.forward_features(waveform).shape == (2, 200)
    assert model(waveform)["tags"].shape == (2, 50)
    vgg = EncoreModel(frontend=MUSICNN_FRONTEND, backbone="musicnn_vgg", tag_names=["a"]).eval()
    assert vgg.forward_features(waveform).shape == (2, 256)
    with pytest.raises(ParameterError, match="187 frames"):
        vgg(torch.randn(1, 16000))


def test_a_checkpoint_naming_the_removed_cepstral_statistics_loads_when_they_were_off(tmp_path):
    model = make_model()
    kwargs = {
        "frontend": FRONTEND,
        "backbone": "small_cnn",
        "backbone_kwargs": {"channels": [8, 16, 16, 16], "embedding_dim": 16},
        "label_names": ["a", "b", "c"],
        "tag_names": ["x", "y"],
        "regression_names": ["appeal"],
    }
    for value, loads in ((0, True), (20, False)):  # written the old way: the option in the model arguments
        path = tmp_path / f"old-{value}.pt"
        card = {"model_kwargs": {**kwargs, "cepstral_statistics": value}, "chunk_seconds": 3.0, "card_version": 1}
        torch.save({"model_state": model.state_dict(), "model_card": card}, path)
        if loads:
            loaded, card = load_model(path)
            assert "cepstral_statistics" not in card.network.model_kwargs()
            torch.testing.assert_close(loaded.state_dict(), model.state_dict())
        else:
            with pytest.raises(CheckpointError, match="cepstral statistics"):
                load_model(path)


def test_each_backbone_runs_on_a_cpu_in_the_memory_format_and_batch_its_registry_entry_gives():
    """musicnn's tall one-channel filters run fastest contiguous, two chunks at a time
    (bench/bench_embed.py); the stacked CNNs channels-last, four at a time. Inference and the
    embedding pass follow the entry, and the embeddings do not depend on the batch."""
    from encore.inference.backends import fuse_for_inference
    from encore.inference.predictor import CUDA_BATCH_SIZE, DEFAULT_BATCH_SIZE, Predictor, chunks_per_batch
    from encore.models.musicnn import MUSICNN_CHUNK_SECONDS, MUSICNN_FRONTEND
    from encore.train.refit import song_embeddings

    torch.manual_seed(0)
    musicnn = EncoreModel(frontend=MUSICNN_FRONTEND, backbone="musicnn", backbone_kwargs=SMALL["musicnn"], tag_names=["a"])
    small = EncoreModel(frontend=FRONTEND, backbone="small_cnn", label_names=["a", "b"])
    assert (chunks_per_batch("musicnn"), chunks_per_batch("small_cnn")) == (2, DEFAULT_BATCH_SIZE)
    assert chunks_per_batch("musicnn", "cuda:0") == CUDA_BATCH_SIZE
    timbral = fuse_for_inference(musicnn.eval().to(memory_format=torch.channels_last)).backbone.timbral[0].conv.weight
    assert timbral.stride() == torch.empty(timbral.shape).stride()  # one input channel: only the strides tell
    last_conv = [m for m in fuse_for_inference(small.eval()).modules() if isinstance(m, torch.nn.Conv2d)][-1].weight
    assert last_conv.is_contiguous(memory_format=torch.channels_last) and not last_conv.is_contiguous()
    for model, chunk, batch in ((musicnn, MUSICNN_CHUNK_SECONDS, 2), (small, 1.0, DEFAULT_BATCH_SIZE)):
        settings = model.frontend.settings()
        card = ModelCard(
            network=NetworkSpec(frontend=FeatureConfig(**settings), backbone=model.backbone_name),
            chunk=ChunkSpec(seconds=chunk),
        )
        assert Predictor(model, card).batch_size == batch and Predictor(model, card, batch_size=7).batch_size == 7
        samples = int(round(chunk * settings["sample_rate"]))
        songs = [np.random.default_rng(i).normal(0, 0.1, samples * 5).astype(np.float32) for i in range(2)]
        by_default = song_embeddings(model, songs, chunk_samples=samples, hop_samples=samples)
        whole = song_embeddings(model, songs, chunk_samples=samples, hop_samples=samples, batch_size=64)
        np.testing.assert_allclose(by_default, whole, rtol=1e-4, atol=1e-5)
