"""A converted musicnn checkpoint used through the ordinary commands, with no TensorFlow.

The checkpoint here is written by the converter's own card and model code with seeded
random weights (the real conversion needs the musicnn extra and is tested by
``test_musicnn_parity.py``): what is checked is that ``pretrained:NAME`` resolves, that
predict, ONNX export and the service path load it like any run, and that the errors say
what to run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from encore.cli.main import app
from encore.exceptions import CheckpointError, ParameterError
from encore.models import EncoreModel
from encore.models.checkpoint import load_model, save_checkpoint
from encore.pretrained import pretrained_spec, resolve_run
from encore.pretrained.catalogue import MSD_TAGS
from encore.pretrained.musicnn import build_card, convert_pretrained, network_spec

runner = CliRunner()


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A models folder holding a 'musicnn-msd' with seeded random weights and the converter's card."""
    folder = tmp_path / "models"
    monkeypatch.setenv("ENCORE_PRETRAINED_DIR", str(folder))
    monkeypatch.setenv("ENCORE_EMBEDDING_CACHE", str(tmp_path / "embeddings"))
    spec = pretrained_spec("musicnn-msd")
    torch.manual_seed(0)
    model = EncoreModel(**network_spec(spec).model_kwargs()).eval()
    save_checkpoint(folder / "musicnn-msd" / "checkpoint.pt", model, build_card(spec, "0.1.0", 0))
    return folder


def _wav(path, seconds=7.0, sample_rate=22050):
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32), sample_rate)
    return path


def test_the_card_records_origin_licence_tags_and_input_spec(models_dir):
    model, card = load_model(resolve_run("pretrained:musicnn-msd"))
    assert card.published and card.pretrained == "musicnn-msd"
    assert card.licence == "ISC"
    assert card.origin.package == "musicnn" and "Pons" in card.origin.paper
    assert card.tag_names == list(MSD_TAGS) and len(MSD_TAGS) == 50
    assert card.input_spec["compression"] == "log10(1 + 10000 * mel)" and card.input_spec["patch_frames"] == 187
    assert model.frontend.settings()["compression"] == "log10_1p"


def test_predict_pretrained_gives_the_50_published_tags(models_dir, tmp_path):
    song = _wav(tmp_path / "song.wav")
    result = runner.invoke(app, ["predict", "pretrained:musicnn-msd", str(song)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(row["tags"]) <= set(MSD_TAGS) and len(row["tags"]) == 5
    assert "label" not in row or row["label"] is None


def test_a_model_not_converted_says_which_command_converts_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCORE_PRETRAINED_DIR", str(tmp_path / "empty"))
    result = runner.invoke(app, ["predict", "pretrained:musicnn-mtt", str(_wav(tmp_path / "s.wav", 1.0))])
    assert result.exit_code == 1
    assert "encore pretrained convert musicnn-mtt" in result.output
    with pytest.raises(ParameterError, match="musicnn-msd"):
        resolve_run("pretrained:musicnn")


def test_list_shows_every_model_and_whether_it_is_converted(models_dir):
    result = runner.invoke(app, ["pretrained", "list"])
    assert result.exit_code == 0, result.output
    for name in ("musicnn-msd", "musicnn-mtt", "musicnn-msd-vgg", "musicnn-mtt-vgg"):
        assert name in result.output
    assert "yes" in result.output and "no" in result.output


def test_convert_without_the_package_names_the_fix(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "musicnn" else real(name, *a))
    with pytest.raises(ParameterError, match=r"pip install --no-deps musicnn"):
        convert_pretrained("musicnn-msd", tmp_path)
    result = runner.invoke(app, ["pretrained", "convert", "musicnn-msd", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "encore[musicnn]" in result.output


@pytest.mark.filterwarnings("ignore")
def test_onnx_export_of_a_converted_model_matches_pytorch(models_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from encore.inference import Predictor

    target = tmp_path / "musicnn.onnx"
    result = runner.invoke(app, ["export", "pretrained:musicnn-msd", "--out", str(target)])
    assert result.exit_code == 0, result.output
    exported = Predictor.from_onnx(target)
    reference = Predictor.from_checkpoint(resolve_run("pretrained:musicnn-msd"), backend="eager")
    rng = np.random.default_rng(0)
    waveforms = [rng.standard_normal(int(s * 16000)).astype(np.float32) * 0.1 for s in (3.0, 7.0)]
    np.testing.assert_allclose(
        exported.predict_arrays(waveforms)["tag_probs"], reference.predict_arrays(waveforms)["tag_probs"], atol=1e-4
    )


def test_a_path_resolves_to_itself_and_an_unknown_name_is_a_workspace_error(models_dir, tmp_path):
    from encore.exceptions import WorkspaceError

    assert resolve_run(models_dir / "musicnn-msd") == models_dir / "musicnn-msd"
    with pytest.raises(WorkspaceError, match="not an encore workspace"):
        resolve_run("no-such-run", tmp_path)
    with pytest.raises(CheckpointError, match="encore pretrained convert musicnn-mtt-vgg"):
        resolve_run("pretrained:musicnn-mtt-vgg")


def _toy_at_16k():
    """The training toy (tones by class, split by artist), its 8-kHz songs repeated to 16 kHz."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
    from toy import make_toy, toy_config

    manifest, waveforms = make_toy()
    return manifest, {k: np.repeat(v, 2) for k, v in waveforms.items()}, toy_config


@pytest.mark.slow
def test_the_song_level_probe_keeps_the_backbone_and_fits_every_head(models_dir, tmp_path):
    from encore.models.checkpoint import load_checkpoint
    from encore.train.loop import fit

    from encore.train.runs import get_trainer

    manifest, waveforms, toy_config = _toy_at_16k()
    config = toy_config(
        **{"features.sample_rate": 16000, "train.init_from": "pretrained:musicnn-msd", "train.freeze_backbone": True}
    )
    tasks: dict[str, list[int]] = {}

    def start(description, total):  # what a progress bar would draw: each task's total and its advances
        tasks[description] = [total, 0]
        return lambda n=1: tasks[description].__setitem__(1, tasks[description][1] + n)

    epochs: list[dict] = []
    result = fit(manifest, waveforms, config, tmp_path / "probe", callback=epochs.append, progress=start)
    n_train, n_val = len(manifest.subset("train")), len(manifest.subset("val"))
    # no epochs to count (and the trainer says so), but every training and validation song embedded is counted
    assert epochs == [] and get_trainer("cnn").epochs(config) is None
    assert tasks == {f"embed {n_train} training songs": [n_train, n_train], f"embed {n_val} validation songs": [n_val, n_val]}
    source = load_checkpoint(models_dir / "musicnn-msd" / "checkpoint.pt")["model_state"]
    state = load_checkpoint(result.checkpoint)
    card = state["model_card"]
    for key, value in source.items():
        if key.startswith("backbone."):
            torch.testing.assert_close(state["model_state"][key], value)
    assert card.network.frontend.compression == "log10_1p"  # the source's front end, not the config's
    assert card.chunk.seconds == pytest.approx(2.976) and card.network.backbone == "musicnn"
    assert card.training.channels_last is False  # train.channels_last is on, but musicnn runs faster contiguous
    assert set(card.probe) == {"class", "tags", "regression"} and card.aggregate == "mean_logits"
    assert card.transfer["published"] is True  # so the probe keeps its embeddings on disk (below)
    assert result.history == []  # no epoch loop
    assert card.metrics["validation"]["val_accuracy"] > 1 / 3  # the tones are separable on random features too
    cached = sorted((tmp_path / "embeddings").rglob("*.npy"))
    # one embedding per training and validation song, kept for the next fold: the validation metrics and the
    # temperature read the validation songs' embeddings, with no second pass through the network
    assert len(cached) == len(manifest.subset("train")) + len(manifest.subset("val"))
    from encore.models.checkpoint import load_model
    from encore.train.calibrate import fit_song_temperature

    model, _ = load_model(result.checkpoint)
    val = manifest.subset("val")
    direct = fit_song_temperature(
        model,
        [waveforms[t] for t in val["track_id"]],
        manifest.class_targets(val),
        chunk_samples=card.chunk_samples,
        hop_samples=card.hop_samples,
        aggregate=card.aggregate,
    )
    assert card.calibration.fitted_temperature == pytest.approx(direct["fitted_temperature"], rel=1e-3)
    # the novelty distance, fitted from the cached embeddings and the log-mel's band statistics, is the one the
    # network's own pass gives, and the probe's predictions carry it
    from encore.inference import Predictor
    from encore.train.refit import fit_novelty

    assert card.novelty is not None and card.novelty.fitted and card.novelty.reference == "validation"
    full = fit_novelty(
        load_model(result.checkpoint)[0],
        [waveforms[t] for t in manifest.subset("train")["track_id"]],
        [waveforms[t] for t in val["track_id"]],
        chunk_samples=card.chunk_samples,
        hop_samples=card.hop_samples,
    )
    # (the cache keeps float32 embeddings; the toy's random network whitens them through a near-singular
    # covariance, which turns their rounding into up to 0.3 % of its largest distances)
    np.testing.assert_allclose(card.novelty.quantiles, full["quantiles"], rtol=1e-2)
    assert card.novelty.threshold == pytest.approx(full["threshold"], rel=1e-2)
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
    described = predictor.describe(predictor.predict_waveform(waveforms[val["track_id"].iloc[0]]))
    assert set(described["novelty"]) >= {"score", "novel", "distance"}
    again = fit(manifest, waveforms, config, tmp_path / "probe-again")  # from the cache: the same heads
    torch.testing.assert_close(
        load_checkpoint(again.checkpoint)["model_state"]["heads.class.weight"], state["model_state"]["heads.class.weight"]
    )


@pytest.mark.slow
def test_a_probe_predicts_from_cached_embeddings_what_the_predictor_does(models_dir, tmp_path):
    from encore.inference import Predictor
    from encore.train.loop import fit
    from encore.train.transfer import cached_probe_arrays

    manifest, waveforms, toy_config = _toy_at_16k()
    config = toy_config(
        **{"features.sample_rate": 16000, "train.init_from": "pretrained:musicnn-msd", "train.freeze_backbone": True}
    )
    result = fit(manifest, waveforms, config, tmp_path / "probe")
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
    test = [waveforms[t] for t in manifest.subset("test")["track_id"]]
    cache = tmp_path / "held-out"
    cached = cached_probe_arrays(predictor, test, cache_dir=cache)
    direct = predictor.predict_arrays(test)
    assert cached is not None and set(cached) == set(direct) - {"score_intervals"}
    assert {"class_probs", "tag_probs", "scores", "novelty_distance"} <= set(cached)
    assert predictor.novelty_calibration is not None and predictor.novelty_calibration.usable
    for key, value in cached.items():  # the novelty distance too: cached embedding and band statistics, as forward reads them
        np.testing.assert_allclose(value, direct[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert len(list(cache.rglob("*.npy"))) == len(test)  # each held-out song embedded once, kept
    assert cached_probe_arrays(predictor, test, cache_dir=cache)["class_probs"].shape == (len(test), 3)
    published = Predictor.from_checkpoint(models_dir / "musicnn-msd", device="cpu")
    assert cached_probe_arrays(published, test, cache_dir=cache) is None  # not a probe: the network predicts


@pytest.mark.slow
def test_fine_tuning_from_a_pretrained_model_scales_the_copied_layers_learning_rate(models_dir, tmp_path):
    from encore.models.checkpoint import load_checkpoint
    from encore.train.loop import fit

    manifest, waveforms, toy_config = _toy_at_16k()
    config = toy_config(
        **{
            "features.sample_rate": 16000,
            "train.init_from": "pretrained:musicnn-msd",
            "train.init_lr_scale": 0.1,
            "train.epochs": 1,
            "train.chunks_per_song": 1,
            "train.warmup_epochs": 0,
        }
    )
    result = fit(manifest, waveforms, config, tmp_path / "ft")
    last = load_checkpoint(tmp_path / "ft" / "last.pt")
    scales = sorted({group["lr_scale"] for group in last["optimizer_state"]["param_groups"]})
    assert scales == [0.1, 1.0]
    source = load_checkpoint(models_dir / "musicnn-msd" / "checkpoint.pt")["model_state"]
    tuned = load_checkpoint(result.checkpoint)["model_state"]
    assert not torch.equal(tuned["backbone.dense.weight"], source["backbone.dense.weight"])  # the backbone learns


def test_a_pretrained_source_needs_its_sample_rate(models_dir, tmp_path):
    from encore.train.loop import fit

    manifest, waveforms, toy_config = _toy_at_16k()
    config = toy_config(**{"train.init_from": "pretrained:musicnn-msd"})  # the toy config decodes at 8 kHz
    with pytest.raises(ParameterError, match="features.sample_rate=16000"):
        fit(manifest, waveforms, config, tmp_path / "bad")


def test_the_service_serves_a_pretrained_model_by_name(models_dir, tmp_path):
    from fastapi.testclient import TestClient

    from encore.serve import ServeSettings, create_app

    song = _wav(tmp_path / "song.wav", seconds=4.0)
    settings = ServeSettings(run="pretrained:musicnn-msd", workers=1)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/predict", files={"file": ("song.wav", song.read_bytes(), "audio/wav")})
    assert response.status_code == 200, response.text
    assert set(response.json()["tags"]) <= set(MSD_TAGS) and response.json()["run"] == "musicnn-msd"


def _add_published(folder, name, seed):
    """Another converted model in the models folder, with its own seeded random weights."""
    spec = pretrained_spec(name)
    torch.manual_seed(seed)
    model = EncoreModel(**network_spec(spec).model_kwargs()).eval()
    save_checkpoint(folder / name / "checkpoint.pt", model, build_card(spec, "0.1.0", 0))


@pytest.mark.slow
def test_two_published_models_side_by_side_are_one_probe_on_both_embeddings(models_dir, tmp_path):
    from encore.models.checkpoint import load_checkpoint
    from encore.train.loop import fit

    _add_published(models_dir, "musicnn-mtt", seed=1)
    manifest, waveforms, toy_config = _toy_at_16k()
    sources = ["pretrained:musicnn-msd", "pretrained:musicnn-mtt"]
    config = toy_config(**{"features.sample_rate": 16000, "train.init_from": sources, "train.freeze_backbone": True})
    result = fit(manifest, waveforms, config, tmp_path / "pair")
    model, card = load_model(result.checkpoint)
    assert card.network.n_members == 2 and card.network.backbone == "musicnn"
    assert [p.split("/")[-2] for p in card.transfer["source"]] == ["musicnn-msd", "musicnn-mtt"]
    state = load_checkpoint(result.checkpoint)["model_state"]
    for k, name in enumerate(["musicnn-msd", "musicnn-mtt"]):
        source = load_checkpoint(models_dir / name / "checkpoint.pt")["model_state"]
        for key, value in source.items():
            if key.startswith("backbone."):
                torch.testing.assert_close(state[f"backbone.{k}.{key[len('backbone.') :]}"], value)
    # the embedding is the two models' side by side, and the probe reads all of it
    msd, _ = load_model(resolve_run("pretrained:musicnn-msd"))
    mtt, _ = load_model(resolve_run("pretrained:musicnn-mtt"))
    batch = torch.from_numpy(np.stack([waveforms[t][: card.chunk_samples] for t in list(waveforms)[:3]]))
    with torch.no_grad():
        both = torch.cat([msd.eval().forward_features(batch), mtt.eval().forward_features(batch)], dim=1)
        torch.testing.assert_close(model.eval().forward_features(batch), both)
    weight = state["heads.class.weight"]  # (members, classes, 200)
    assert weight.shape[0] == 2 and weight[0].abs().sum() > 0 and weight[1].abs().sum() > 0
    assert card.metrics["validation"]["val_accuracy"] > 1 / 3
    # each member's embeddings (training and validation songs) are cached under its own model's digest: msd alone
    # embeds nothing again
    n_songs = len(manifest.subset("train")) + len(manifest.subset("val"))
    cached = lambda: sorted((tmp_path / "embeddings").rglob("*.npy"))  # noqa: E731
    assert len(cached()) == 2 * n_songs
    single = toy_config(**{"features.sample_rate": 16000, "train.init_from": sources[0], "train.freeze_backbone": True})
    alone = fit(manifest, waveforms, single, tmp_path / "msd")
    assert len(cached()) == 2 * n_songs
    assert load_model(alone.checkpoint)[1].probe["class"]["songs"] == card.probe["class"]["songs"]


def test_side_by_side_sources_must_be_published_and_read_the_same_input(models_dir, tmp_path):
    from encore.train.loop import fit

    _add_published(models_dir, "musicnn-msd-vgg", seed=2)
    manifest, waveforms, toy_config = _toy_at_16k()
    pair = ["pretrained:musicnn-msd", "pretrained:musicnn-msd-vgg"]
    config = toy_config(**{"features.sample_rate": 16000, "train.init_from": pair, "train.freeze_backbone": True})
    with pytest.raises(ParameterError, match="do not read the same input through the same architecture"):
        fit(manifest, waveforms, config, tmp_path / "bad")
    twice = ["pretrained:musicnn-msd", "pretrained:musicnn-msd"]
    with pytest.raises(ParameterError, match="names a source twice"):
        fit(manifest, waveforms, toy_config(**{"features.sample_rate": 16000, "train.init_from": twice}), tmp_path / "bad2")


@pytest.mark.slow
def test_train_takes_init_from_more_than_once(models_dir, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))
    from test_cv import make_workspace

    _add_published(models_dir, "musicnn-mtt", seed=1)
    ws, config = make_workspace(tmp_path)
    result = runner.invoke(
        app,
        [
            "train", "-w", str(ws.root), "-c", str(config), "--set", "features.sample_rate=16000", "--name", "pair",
            "--init-from", "pretrained:musicnn-msd", "--init-from", "pretrained:musicnn-mtt", "--freeze-backbone",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    _, card = load_model(ws.runs_dir / "pair" / "checkpoint.pt")
    assert card.network.n_members == 2 and len(card.transfer["source"]) == 2 and card.transfer["frozen"]
    assert set(card.probe) == {"class", "tags", "regression"}


def _cv_of_shipped_pair(models_dir, tmp_path, config: str, name: str, *extra: str):
    """``encore cv`` (2 folds) of the musicnn pair's shipped ``configs/<config>`` on the cv tests' 38-song workspace.

    Returns the card of its first fold's run, after checking every song was held out once.
    """
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))
    from test_cv import make_workspace

    _add_published(models_dir, "musicnn-mtt", seed=1)
    ws, _ = make_workspace(tmp_path)
    shipped = Path(__file__).parents[2] / "configs" / config
    args = ["cv", "-w", str(ws.root), "--model", f"{name}:cnn={shipped}", "--folds", "2", "--val-fraction", "0", *extra]
    result = runner.invoke(app, [*args, "--n-boot", "50", "--name", name, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(ws.root / "cv" / name / "predictions" / f"{name}.csv")
    assert sorted(predictions["track_id"]) == [f"s{i:02d}" for i in range(38)]  # every song held out once
    # the held-out novelty comes from the cached embeddings too, and the report counts its false alarms
    assert predictions["novelty"].notna().all() and predictions["novel"].isin([True, False]).all()
    novelty = json.loads((ws.root / "cv" / name / "report.json").read_text())["models"][name]["novelty"]
    assert novelty["n"] == 38 and novelty["flagged"] == int(predictions["novel"].sum())
    return load_model(next((ws.root / "cv" / name / "runs" / name).glob("*/checkpoint.pt")))[1]


@pytest.mark.slow
def test_cv_runs_the_shipped_side_by_side_probe_config(models_dir, tmp_path):
    card = _cv_of_shipped_pair(models_dir, tmp_path, "musicnn_probe.yaml", "pair", "--val-fraction", "0.2")
    assert card.network.n_members == 2 and card.transfer["frozen"] and card.sample_rate == 16000
    # a probe reads no validation songs (its heads are chosen by cross-validation), so even with a validation
    # share asked for it trains on every song outside the test fold, as the blend's probe does
    plan = json.loads((tmp_path / "ws" / "cv" / "pair" / "report.json").read_text())["plan"]
    assert plan["val_fraction"] == 0.2 and plan["models"]["pair"]["uses_validation"] is False
    assert card.manifest.path.endswith("-noval.csv") and card.probe["class"]["songs"] == card.manifest.summary["splits"]["train"]
    # the held-out songs were predicted from their cached embeddings: every song, each member, once
    assert len(list((tmp_path / "embeddings").rglob("*.npy"))) == 2 * 38


@pytest.mark.slow
def test_fine_tuning_two_published_models_side_by_side_trains_both_members(models_dir, tmp_path):
    from encore.models.checkpoint import load_checkpoint
    from encore.train.loop import fit

    _add_published(models_dir, "musicnn-mtt", seed=1)
    manifest, waveforms, toy_config = _toy_at_16k()
    sources = ["pretrained:musicnn-msd", "pretrained:musicnn-mtt"]
    config = toy_config(
        **{
            "features.sample_rate": 16000,
            "train.init_from": sources,
            "train.init_lr_scale": 0.1,
            "train.epochs": 1,
            "train.chunks_per_song": 1,
            "train.warmup_epochs": 0,
        }
    )
    result = fit(manifest, waveforms, config, tmp_path / "ft")
    tuned = load_checkpoint(result.checkpoint)["model_state"]
    for k, name in enumerate(["musicnn-msd", "musicnn-mtt"]):
        source = load_checkpoint(models_dir / name / "checkpoint.pt")["model_state"]
        assert not torch.equal(tuned[f"backbone.{k}.dense.weight"], source["backbone.dense.weight"])  # each member learns


@pytest.mark.slow
def test_tune_top_fine_tunes_each_members_top_from_cached_chunks_and_keeps_the_layers_below(models_dir, tmp_path):
    from encore.inference import Predictor
    from encore.models.checkpoint import load_checkpoint
    from encore.train.loop import fit
    from encore.train.runs import get_trainer
    from encore.train.transfer import cached_probe_arrays

    _add_published(models_dir, "musicnn-mtt", seed=1)
    manifest, waveforms, toy_config = _toy_at_16k()
    settings = {
        "features.sample_rate": 16000,
        "train.init_from": ["pretrained:musicnn-msd", "pretrained:musicnn-mtt"],
        "train.freeze_backbone": True,
        "train.tune_top": True,
        "train.epochs": 4,
        "train.lr": 1e-3,
        "train.init_lr_scale": 0.1,
    }
    rows: list[dict] = []
    result = fit(manifest, waveforms, toy_config(**settings), tmp_path / "tuned", callback=rows.append)
    # each epoch of tuning reports its row, as many as the trainer tells a progress bar to expect
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] == list(range(1, get_trainer("cnn").epochs(toy_config(**settings)) + 1))
    state = load_checkpoint(result.checkpoint)
    card = state["model_card"]
    assert card.transfer["tuned_top"] is True and card.transfer["frozen"] is True
    top = card.probe["top"]
    assert top["epochs"] == 4 and len(top["train_loss"]) == 4 and top["songs"] == card.probe["class"]["songs"]
    assert top["train_loss"][-1] < top["train_loss"][0]  # the tones are learnable from the tops up
    assert set(card.probe) == {"class", "tags", "regression", "top"}
    for k, name in enumerate(["musicnn-msd", "musicnn-mtt"]):
        source = load_checkpoint(models_dir / name / "checkpoint.pt")["model_state"]
        for key, value in source.items():
            if not key.startswith("backbone."):
                continue
            mine = state["model_state"][f"backbone.{k}.{key[len('backbone.') :]}"]
            if key.startswith(("backbone.dense.", "backbone.dense_bn.", "backbone.pool_bn.")):
                if key.endswith(("weight", "running_mean")):
                    assert not torch.equal(mine, value), key  # the top moved
            else:
                torch.testing.assert_close(mine, value)  # the front and mid end did not
    # every training and validation chunk went through the frozen layers once per member, kept for the next fold
    cache = tmp_path / "embeddings"
    n_songs = len(manifest.subset("train")) + len(manifest.subset("val"))
    bottoms = lambda: [p for p in cache.rglob("*.npy") if "song_bottom" in (p.parents[1] / "settings.json").read_text()]  # noqa: E731
    assert len(bottoms()) == 2 * n_songs
    fit(manifest, waveforms, toy_config(**{**settings, "train.seed": 1}), tmp_path / "tuned-again")
    assert len(bottoms()) == 2 * n_songs
    # a cross-validation predicts the held-out songs from their cached chunks through the tuned tops
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
    test = [waveforms[t] for t in manifest.subset("test")["track_id"]]
    counted: list[int] = []
    cached = cached_probe_arrays(predictor, test, cache_dir=tmp_path / "held-out", callback=counted.append)
    direct = predictor.predict_arrays(test)
    assert cached is not None and counted == [1] * len(test)  # a song at a time, both members' parts of it
    for key, value in cached.items():
        np.testing.assert_allclose(value, direct[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_the_tops_run_under_the_autocast_the_model_is_served_with(models_dir):
    from encore.train.refit import song_embeddings
    from encore.train.transfer import cached_song_bottoms, top_embeddings

    model, card = load_model(models_dir / "musicnn-msd" / "checkpoint.pt")
    rng = np.random.default_rng(0)
    songs = [rng.standard_normal(16000 * seconds).astype(np.float32) * 0.1 for seconds in (4, 7)]
    spec = {"chunk_samples": card.chunk_samples, "hop_samples": card.hop_samples}
    for bf16 in (False, True):  # bfloat16 autocast runs on any CPU (emulated where it has no instructions)
        served = song_embeddings(model, songs, bf16=bf16, **spec)  # the whole network, as a Predictor runs it
        tuned = top_embeddings(model, cached_song_bottoms(model, songs, bf16=bf16, **spec), bf16=bf16)
        np.testing.assert_allclose(tuned, served, rtol=1e-5, atol=1e-5, err_msg=f"bf16={bf16}")


def test_tune_top_needs_a_frozen_backbone_with_a_top(models_dir):
    from encore.config import load_config
    from encore.exceptions import ConfigError
    from encore.train.transfer import tune_top

    with pytest.raises(ConfigError, match="set train.freeze_backbone=true"):
        load_config(None, ["train.tune_top=true", "train.init_from=pretrained:musicnn-msd"])
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tiny_cnn import tiny_model_kwargs

    model = EncoreModel(**tiny_model_kwargs())  # the from-scratch CNN: no top to tune
    with pytest.raises(ParameterError, match="needs a backbone with a top"):
        tune_top(model, None, [[]], epochs=1, lr=1e-3, lr_scale=0.1, batch_size=4, weight_decay=0.0)  # type: ignore[arg-type]


@pytest.mark.slow
def test_cv_runs_the_shipped_tuned_config_through_the_frozen_layers_once(models_dir, tmp_path):
    card = _cv_of_shipped_pair(models_dir, tmp_path, "musicnn_tuned.yaml", "tuned", "--set", "train.epochs=2")
    assert card.transfer["tuned_top"] and card.probe["top"]["epochs"] == 2
    # training and held-out songs alike went through each member's frozen layers once; no mean embedding was cached
    assert len(list((tmp_path / "embeddings").rglob("*.npy"))) == 2 * 38


@pytest.mark.slow
def test_train_tune_top_flag(models_dir, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))
    from test_cv import make_workspace

    ws, config = make_workspace(tmp_path)
    result = runner.invoke(
        app,
        [
            "train", "-w", str(ws.root), "-c", str(config), "--set", "features.sample_rate=16000", "--set", "train.epochs=2",
            "--name", "tuned", "--init-from", "pretrained:musicnn-msd", "--tune-top",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    _, card = load_model(ws.runs_dir / "tuned" / "checkpoint.pt")
    assert card.transfer["frozen"] and card.transfer["tuned_top"] and len(card.probe["top"]["train_loss"]) == 2
