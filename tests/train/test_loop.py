import numpy as np
import pandas as pd
import pytest
import torch

from encore.config import load_config
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.inference import Predictor
from encore.train.loop import fit, get_lr

SAMPLE_RATE = 8000
CLASSES = ["low", "mid", "high"]
FREQS = {"low": 220.0, "mid": 880.0, "high": 2200.0}


def tone_song(label: str, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = FREQS[label] * rng.uniform(0.95, 1.05)
    wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    rows, waveforms = [], {}
    for split, n_artists in (("train", 4), ("val", 2), ("test", 2)):
        for a in range(n_artists):
            for label in CLASSES:
                for s in range(2):
                    tid = f"{split}-{label}-{a}-{s}"
                    waveforms[tid] = tone_song(label, rng)
                    loud = float(np.sqrt(np.mean(waveforms[tid] ** 2)))
                    rows.append({
                        "track_id": tid, "path": f"/nowhere/{tid}.wav", "artist": f"{split}{label}{a}", "split": split,
                        "label": label, "appeal": loud, TAG_PREFIX + "bright": float(label == "high"),
                    })
    rows[0]["label"] = None  # an unlabelled song still trains the other heads
    manifest = Manifest(frame=pd.DataFrame(rows), label_names=CLASSES, tag_names=["bright"], regression_names=["appeal"])
    return manifest, waveforms


def toy_config(**extra):
    overrides = {
        "features.sample_rate": SAMPLE_RATE, "features.n_fft": 256, "features.hop_length": 128, "features.n_mels": 32,
        "features.f_max": 4000.0, "model.kwargs": {"channels": [8, 16, 16, 16], "embedding_dim": 16},
        "train.epochs": 4, "train.batch_size": 8, "train.chunk_seconds": 1.0, "train.chunks_per_song": 2,
        "train.lr": 0.01, "train.num_threads": 1, "train.log_every": 1000,
    }
    overrides.update(extra)
    return load_config(None, overrides)


def test_get_lr_warms_up_then_decays():
    lrs = [get_lr(s, total_steps=100, warmup_steps=10, base_lr=1.0) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1.0)
    assert lrs[50] < lrs[10] and lrs[-1] >= 0.1 - 1e-9


def test_fit_learns_and_checkpoint_round_trips(toy, tmp_path):
    manifest, waveforms = toy
    result = fit(manifest, waveforms, toy_config(), tmp_path / "run")
    history = result.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.best_metrics["val_accuracy"] >= 0.9
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == len(history) + 1
    assert (tmp_path / "run" / "config.yaml").is_file()

    predictor = Predictor.from_checkpoint(result.checkpoint)
    card = predictor.card
    assert card["model_kwargs"]["label_names"] == CLASSES
    assert card["manifest"]["digest"] == manifest.digest()
    test = manifest.subset("test")
    arrays = predictor.predict_arrays([waveforms[t] for t in test["track_id"]])
    accuracy = (arrays["class_probs"].argmax(1) == manifest.class_targets(test)).mean()
    assert accuracy >= 0.9
    # the same song alone or in a batch gives the same result
    alone = predictor.predict_waveform(waveforms[test["track_id"][0]])
    np.testing.assert_allclose(alone["class_probs"], arrays["class_probs"][0], atol=1e-5)


def test_killed_run_resumes_to_the_same_weights(toy, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.epochs": 3})
    full = fit(manifest, waveforms, config, tmp_path / "full")

    class Killed(Exception):
        pass

    def die_after_first_epoch(row):
        if row["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        fit(manifest, waveforms, config, tmp_path / "resumed", callback=die_after_first_epoch)
    resumed = fit(manifest, waveforms, config, tmp_path / "resumed")
    assert [round(r["train_loss"], 6) for r in resumed.history] == [round(r["train_loss"], 6) for r in full.history]
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model_state"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_balanced_sampler_and_l1_and_mixup_run(toy, tmp_path):
    manifest, waveforms = toy
    config = toy_config(**{"train.epochs": 1, "train.balance": "sampler", "train.l1": 1e-5, "augment.mixup_alpha": 0.4})
    result = fit(manifest, waveforms, config, tmp_path / "run")
    assert np.isfinite(result.history[0]["train_loss"])
