from pathlib import Path

import pytest

from encore.config import EncoreConfig, load_config, save_config
from encore.exceptions import ConfigError, ParameterError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = load_config()
    assert isinstance(cfg, EncoreConfig)
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load_config(path) == cfg


def test_overrides_from_strings_and_mapping(tmp_path):
    cfg = load_config(None, ["train.epochs=3", "model.kwargs={channels: [8, 8]}", "features.f_max=null"])
    assert cfg.train.epochs == 3
    assert cfg.model.kwargs == {"channels": [8, 8]}
    assert cfg.features.f_max is None
    assert load_config(None, {"train.lr": 0.1}).train.lr == 0.1


def test_misspelt_key_is_named_with_its_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        load_config(path)


def test_bad_value_and_bad_override_are_config_errors():
    with pytest.raises(ConfigError, match="hop_length"):
        load_config(None, ["features.hop_length=0"])
    with pytest.raises(ParameterError, match="section.key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such/file.yaml")


def test_split_fractions_must_leave_training_data():
    with pytest.raises(ConfigError, match="val_fraction"):
        load_config(None, ["labels.val_fraction=0.5", "labels.test_fraction=0.45"])


def test_packaged_demo_config_is_valid():
    from encore.demo.run import demo_config

    cfg = demo_config(["train.epochs=2"])
    assert cfg.train.epochs == 2 and cfg.labels.classes


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)  # a misspelt or stale key is a ConfigError naming it
    assert cfg.features.sample_rate > 0 and cfg.train.epochs > 0


def test_emotify_walkthrough_trains_the_cross_validated_cnn():
    """The README's Emotify walk-through uses the CNN settings experiments/NOTES.md reports."""
    walk, cv = load_config(CONFIGS / "emotify.yaml"), load_config(CONFIGS / "emotify_cv.yaml")
    assert walk.features == cv.features and walk.model == cv.model and walk.augment == cv.augment
    assert walk.train == cv.train and walk.baseline == cv.baseline


def test_the_emotify_vote_config_is_the_recommended_classical_model_on_the_walkthroughs_features_and_labels():
    """configs/emotify_vote.yaml is `encore train -c configs/emotify.yaml --model ensemble --segments 10` as one file."""
    walk, vote = load_config(CONFIGS / "emotify.yaml"), load_config(CONFIGS / "emotify_vote.yaml")
    assert vote.baseline == walk.baseline.model_copy(update={"estimator": "ensemble", "segment_seconds": 10.0})
    assert vote.labels == walk.labels and vote.features == walk.features  # the classical features' sample rate too


def test_the_emotify_blend_is_the_fusion_studys_model_on_the_walkthroughs_labels():
    """configs/emotify_blend.yaml: the pair's probe 0.75 and the vote on segments 0.25 (the fusion study's fused_25)."""
    from encore.train.blend import member_plans

    walk, blend = load_config(CONFIGS / "emotify.yaml"), load_config(CONFIGS / "emotify_blend.yaml")
    assert blend.labels == walk.labels
    plans = {p.member.name: p for p in member_plans(blend)}
    assert plans["probe"].weight == 0.75 and plans["probe"].config == load_config(CONFIGS / "musicnn_probe.yaml")
    assert plans["vote"].weight == 0.25 and plans["vote"].config == load_config(CONFIGS / "emotify_vote.yaml")


def test_band_statistics_without_a_refit_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"model.band_statistics=true .* set train.refit_heads"):
        load_config(None, {"model.band_statistics": True})
    assert load_config(None, {"model.band_statistics": True, "train.refit_heads": ["regression"]}).model.band_statistics


def test_an_untrained_score_head_needs_the_refit():
    with pytest.raises(ConfigError, match=r"train.appeal_weight=0 leaves the score head untrained; add regression"):
        load_config(None, {"train.appeal_weight": 0})
    assert load_config(None, {"train.appeal_weight": 0, "train.refit_heads": ["regression"]}).train.appeal_weight == 0
