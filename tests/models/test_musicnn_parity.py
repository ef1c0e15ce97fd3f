"""The musicnn port against the original TensorFlow model, as torchaudio tests itself against librosa.

The reference is musicnn's own graph (``musicnn.models.define_model``) with the wheel's
weights restored by ``Saver.restore`` (no silent ``except``, unlike ``extractor()``), fed
the log-mel its ``batch_data`` computes, but in float32 (its float16 cast overflows
under numpy 2). The port reads the same waveform through encore's converted checkpoint.
Tolerance: 1e-4 absolute on tag probabilities and on the penultimate embedding.

Skips with the reason where TensorFlow or musicnn is missing, except in CI
(``ENCORE_REQUIRE_MUSICNN=1``), where that is a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn's tf.compat.v1.layers need Keras 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOLERANCE = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:`tf.layers:UserWarning")  # musicnn builds its graph with tf.compat.v1.layers
SAMPLE_RATE = 16000
N_FRAMES = 187


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as err:
        if os.environ.get("ENCORE_REQUIRE_MUSICNN") == "1":
            pytest.fail(f"{module} is required in CI (ENCORE_REQUIRE_MUSICNN=1) but cannot be imported: {err}")
        pytest.skip(f"{module} not installed (pip install 'encore[musicnn]' && pip install --no-deps musicnn): {err}")


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Notes with harmonics and decays over a bass line, hi-hat noise and kicks: music-like spectra."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = np.zeros_like(t)
    beat = 0.5
    for start in np.arange(0, seconds, beat / 2):
        i = int(start * SAMPLE_RATE)
        n = min(len(t) - i, int(beat * SAMPLE_RATE))
        tt = t[:n]
        f0 = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        note = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 6)) * np.exp(-4 * tt)
        y[i : i + n] += 0.15 * note
        y[i : i + n] += 0.03 * rng.standard_normal(n) * np.exp(-30 * tt)  # hi-hat
        if int(start / (beat / 2)) % 2 == 0:
            y[i : i + n] += 0.4 * np.sin(2 * np.pi * 55 * tt * (1 + np.exp(-20 * tt))) * np.exp(-10 * tt)  # kick
    y += 0.1 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2  # bass
    return (y / np.abs(y).max() * 0.8).astype(np.float32)


def reference_log_mel(waveform: np.ndarray) -> np.ndarray:
    """musicnn's ``batch_data`` log-mel, (n_frames, 96), in float32 instead of float16."""
    import librosa

    mel = librosa.feature.melspectrogram(y=waveform, sr=SAMPLE_RATE, hop_length=256, n_fft=512, n_mels=96).T
    return np.log10(10000 * mel.astype(np.float32) + 1)


def run_original(model_name: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """musicnn's TensorFlow model on ``(batch, 187, 96)`` patches: sigmoid tags and penultimate."""
    import tensorflow as tf
    from musicnn import models

    folder = os.path.join(os.path.dirname(models.__file__), model_name) + os.sep
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        with tf.name_scope("model"):
            outputs = models.define_model(x, is_training, model_name, 50)
        logits = outputs[0]
        embedding = outputs[-1] if "musicnn" in model_name else tf.compat.v1.layers.flatten(outputs[-1])
        with tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.train.Saver().restore(sess, folder)  # no try/except: a failed restore fails the test
            probs, emb = sess.run([tf.nn.sigmoid(logits), embedding], feed_dict={x: patches, is_training: False})
    return {"probs": probs, "embedding": emb}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    _require("tensorflow")
    _require("musicnn")
    from encore.pretrained.musicnn import convert_pretrained

    out = tmp_path_factory.mktemp("pretrained")
    return {name: convert_pretrained(name, out) for name in ("musicnn-msd", "musicnn-mtt-vgg")}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "tf_name"), [("musicnn-msd", "MSD_musicnn"), ("musicnn-mtt-vgg", "MTT_vgg")])
def test_port_matches_the_original_on_the_same_audio(converted, name, tf_name, record_property):
    from encore.models.checkpoint import load_model

    model, card = load_model(converted[name])
    chunk = card.chunk.samples(SAMPLE_RATE)
    waveform = music_like(3 * chunk / SAMPLE_RATE)
    chunks = waveform.reshape(3, chunk)  # what the Predictor feeds: 2.976-s chunks, each one 187-frame patch

    patches = np.stack([reference_log_mel(c) for c in chunks])
    assert patches.shape == (3, N_FRAMES, 96)
    original = run_original(tf_name, patches)

    with torch.no_grad():
        log_mel = model.log_mel(torch.from_numpy(chunks))
        embedding = model.forward_features(torch.from_numpy(chunks))
        probs = torch.sigmoid(model.forward_head(embedding)["tags"])
    # the front end: encore's LogMelSpectrogram with log10_1p is librosa's mel, compressed
    np.testing.assert_allclose(log_mel.numpy().transpose(0, 2, 1), patches, atol=TOLERANCE, rtol=0)
    prob_diff = float(np.abs(probs.numpy() - original["probs"]).max())
    emb_diff = float(np.abs(embedding.numpy() - original["embedding"]).max())
    record_property("max_prob_diff", prob_diff)
    record_property("max_embedding_diff", emb_diff)
    print(f"{name}: largest difference, tag probabilities {prob_diff:.2e}, embedding {emb_diff:.2e}")
    assert prob_diff <= TOLERANCE
    assert emb_diff <= TOLERANCE
    # not a trivial agreement: the tags differ between patches and are not all near 0 or 1
    assert original["probs"].std(axis=0).max() > 1e-3


def test_a_variable_that_does_not_map_is_an_error_naming_it():
    """Runs everywhere: the mapping is checked on a fake checkpoint, no TensorFlow needed."""
    from encore.exceptions import CheckpointError
    from encore.models import EncoreModel
    from encore.pretrained.catalogue import pretrained_spec
    from encore.pretrained.musicnn import map_variables, network_spec, variable_map

    spec = pretrained_spec("musicnn-mtt-vgg")
    model = EncoreModel(**network_spec(spec).model_kwargs())
    state = model.state_dict()
    variables = {}
    for tf_name, (key, _) in variable_map("musicnn_vgg").items():
        shape = tuple(state[key].shape)
        if tf_name.endswith("/kernel"):
            shape = (*shape[2:], shape[1], shape[0]) if len(shape) == 4 else (shape[1], shape[0])
        variables[tf_name] = np.full(shape, 0.5, np.float32)
    variables["beta1_power"] = np.zeros((), np.float32)  # optimiser state is left out quietly
    assert map_variables(model, dict(variables), "musicnn_vgg", source="fake") == len(variable_map("musicnn_vgg"))
    assert torch.all(model.state_dict()["backbone.blocks.0.conv.weight"] == 0.5)
    with pytest.raises(CheckpointError, match="6CNN/kernel"):
        map_variables(model, {**variables, "6CNN/kernel": np.zeros((3, 3, 128, 128), np.float32)}, "musicnn_vgg", source="fake")
    bad = dict(variables)
    bad["dense/kernel"] = np.zeros((255, 50), np.float32)
    with pytest.raises(CheckpointError, match="dense/kernel"):
        map_variables(model, bad, "musicnn_vgg", source="fake")
