"""The typed model card: chunk spec, one set of front-end defaults, version-1 migration, damage named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_cnn import SAMPLE_RATE, build_tiny_model, tiny_card, tiny_model_kwargs

from encore.config import FeatureConfig, load_config
from encore.exceptions import CheckpointError, ConfigError
from encore.features.logmel import LogMelSpectrogram
from encore.inference import Predictor
from encore.models.card import ChunkSpec, ClassicalCard, ModelCard
from encore.models.checkpoint import load_model, save_checkpoint


def test_the_chunk_spec_gives_samples_and_a_hop_within_one_chunk():
    assert ChunkSpec(seconds=3.0).samples(16000) == 48000 and ChunkSpec(seconds=3.0).hop_samples(16000) == 48000
    assert ChunkSpec(seconds=2.976, hop_seconds=1.0).samples(16000) == 47616
    assert ChunkSpec(seconds=1.0, hop_seconds=0.25).hop_samples(8000) == 2000
    assert ChunkSpec(seconds=1.0, hop_seconds=1e-9).hop_samples(8000) == 1
    card = tiny_card(chunk={"seconds": 1.0, "hop_seconds": 0.5})
    assert (card.chunk_samples, card.hop_samples, card.sample_rate) == (SAMPLE_RATE, SAMPLE_RATE // 2, SAMPLE_RATE)


def test_the_front_end_has_one_set_of_defaults_and_every_setting_comes_from_yaml():
    assert LogMelSpectrogram().settings() == LogMelSpectrogram.from_config(FeatureConfig()).settings()
    assert FeatureConfig().f_max is None and LogMelSpectrogram().f_max is None
    config = load_config(None, {"features.mel_scale": "htk", "features.mel_norm": None, "features.pad_mode": "reflect"})
    frontend = LogMelSpectrogram.from_config(config.features)
    assert (frontend.mel_scale, frontend.mel_norm, frontend.pad_mode) == ("htk", None, "reflect")
    with pytest.raises(ConfigError, match="features.mel_scale"):
        load_config(None, {"features.mel_scale": "bark"})
    with pytest.raises(ConfigError, match="f_max"):
        load_config(None, {"features.f_max": 9000.0})  # above half of 16 kHz


def _v1_card(**extra):
    """A card as encore wrote it before cards were typed (version 1)."""
    return {
        "model_type": "cnn",
        "encore_version": "0.1.0",
        "model_kwargs": tiny_model_kwargs(),
        "chunk_seconds": 1.0,
        "chunk_hop_seconds": 0.5,
        "aggregate": "mean_probs",
        "temperature": 2.0,
        "calibration": {"temperature": 2.0, "method": "temperature", "fitted_on": "validation", "kept": True},
        "regression_stats": {"mean": [0.5], "std": [0.2]},
        "training": {"precision": "float32", "channels_last": True, "world_size": 1},
        "manifest": {"path": "manifest.parquet", "digest": "abc", "summary": {}},
        "card_version": 1,
        **extra,
    }


def test_a_checkpoint_written_the_old_way_loads_and_predicts_as_its_migrated_card_says(tmp_path):
    model = build_tiny_model()
    old = tmp_path / "old" / "checkpoint.pt"
    old.parent.mkdir()
    torch.save({"model_state": model.state_dict(), "model_card": _v1_card()}, old)
    loaded, card = load_model(old)
    assert isinstance(card, ModelCard) and card.card_version == 2
    assert (card.chunk.seconds, card.chunk.hop_seconds, card.temperature) == (1.0, 0.5, 2.0)
    assert card.calibration.kept is True and card.label_names == ["ambient", "jazz", "rock"]
    assert card.manifest is not None and card.manifest.digest == "abc" and card.training.channels_last is True
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    # written again by this encore, it reads back the same and predicts the same
    new = save_checkpoint(tmp_path / "new" / "checkpoint.pt", loaded, card)
    assert load_model(new)[1] == card
    assert torch.load(new, weights_only=True)["model_card"]["card_version"] == 2
    song = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 3).astype(np.float32) * 0.1
    a = Predictor.from_checkpoint(old, backend="eager").predict_waveform(song)
    b = Predictor.from_checkpoint(new, backend="eager").predict_waveform(song)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def test_a_newer_or_damaged_card_is_refused_with_what_is_wrong(tmp_path):
    model = build_tiny_model()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model_state": model.state_dict(), "model_card": {**tiny_card().to_dict(), "card_version": 3}}, path)
    with pytest.raises(CheckpointError, match="model card version 3"):
        load_model(path)
    torch.save({"model_state": model.state_dict(), "model_card": _v1_card(chunk_seconds=-1.0)}, path)
    with pytest.raises(CheckpointError, match=r"chunk\.seconds"):
        load_model(path)
    torch.save({"model_state": model.state_dict(), "model_card": _v1_card(aggregate="median")}, path)
    with pytest.raises(CheckpointError, match="aggregate"):
        load_model(path)


def test_a_classical_card_reads_the_unversioned_form_and_round_trips(tmp_path):
    stored = {
        "model_type": "random_forest",
        "sample_rate": 22050,
        "feature_settings": {"kind": "handcrafted", "version": 2, "sample_rate": 22050, "n_fft": 2048, "hop_length": 512},
        "feature_names": ["a", "b", "c"],
        "label_names": ["x", "y"],
        "classes_": [0, 1],
        "feature_importance": {"classifier": [0.2, 0.5, 0.3]},
        "heads": {"classifier": {"selection": {"kept": ["b"], "n_kept": 1}}},
        "trained_on": {"splits": ["train", "val"]},
    }
    (tmp_path / "model_card.json").write_text(json.dumps(stored), encoding="utf-8")
    card = ClassicalCard.read(tmp_path / "model_card.json")
    assert card.card_version == 2 and card.feature_settings.n_mfcc == 20
    assert card.ranked_importance() == [("b", 0.5), ("c", 0.3), ("a", 0.2)]
    assert card.trained_on_validation and card.selections == {"classifier": {"kept": ["b"], "n_kept": 1}}
    card.write(tmp_path / "again.json")
    assert ClassicalCard.read(tmp_path / "again.json") == card
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="bad.json"):
        ClassicalCard.read(tmp_path / "bad.json")
