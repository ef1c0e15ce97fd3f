"""The one run loader and the one predictor interface: a CNN run and a classical run found
the same ways and answering the same calls."""

from __future__ import annotations

import shutil

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from encore.audio import load_audio
from encore.exceptions import CheckpointError, ParameterError, WorkspaceError
from encore.features.handcrafted import compute_handcrafted, handcrafted_feature_names
from encore.inference import BaselinePredictor, Predictor, load_run
from encore.inference.batch import predict_files
from encore.models.card import ClassicalCard, HandcraftedSettings
from encore.workspace import Workspace
from inference_helpers import SAMPLE_RATE, song

N_FFT, HOP_LENGTH = 256, 128


@pytest.fixture(scope="module")
def forest_run(tmp_path_factory):
    """A classical run folder as ``fit_baseline`` writes it: a tiny forest on handcrafted features."""
    run = tmp_path_factory.mktemp("runs") / "forest"
    run.mkdir()
    songs = [song(1.5, seed=s) for s in range(6)]
    features = np.stack([compute_handcrafted(w, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH) for w in songs])
    names = handcrafted_feature_names()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(features[:, : len(names)], [0, 1, 0, 1, 0, 1])
    card = ClassicalCard(
        model_type="random_forest",
        sample_rate=SAMPLE_RATE,
        feature_settings=HandcraftedSettings(sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH),
        feature_names=names,
        label_names=["calm", "busy"],
        classes_=[0, 1],
    )
    joblib.dump({"classifier": forest}, run / "model.joblib")
    card.write(run / "model_card.json")
    return run


def test_a_run_loads_from_its_folder_its_file_or_its_name(tiny_run, forest_run, tmp_path):
    cnn, forest = load_run(tiny_run, device="cpu"), load_run(forest_run)
    assert isinstance(cnn.predictor, Predictor) and isinstance(forest.predictor, BaselinePredictor)
    assert (cnn.run_id, forest.run_id) == ("tiny", "forest") and cnn.folder == tiny_run
    from_file = load_run(tiny_run / "checkpoint.pt", device="cpu")
    assert from_file.run_id == "tiny" and from_file.folder == tiny_run
    ws = Workspace.init(tmp_path / "ws")
    shutil.copytree(forest_run, ws.runs_dir / "rf")
    named = load_run("rf", ws.root)
    assert named.folder == ws.runs_dir / "rf" and named.run_id == "rf"
    with pytest.raises(WorkspaceError, match="known runs: rf"):
        load_run("nope", ws.root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        CheckpointError, match="holds no checkpoint.pt .CNN., model_card.json .classical model. or blend_card.json"
    ):
        load_run(tmp_path / "empty")


def test_a_name_outside_any_workspace_says_it_is_neither_a_path_nor_a_run(tmp_path):
    with pytest.raises(WorkspaceError, match="'gone' is not a file or folder, nor a run name: .* not an encore workspace"):
        load_run("gone", tmp_path)


def test_both_predictors_answer_the_same_calls_the_same_way(tiny_run, forest_run, song_files):
    path = song_files[1]
    for loaded in (load_run(tiny_run, device="cpu"), load_run(forest_run)):
        predictor = loaded.predictor
        assert isinstance(predictor.backend, str) and predictor.device == "cpu"
        waveform = load_audio(path, sample_rate=predictor.sample_rate)
        arrays, duration = predictor.predict_source(path)
        assert duration == pytest.approx(len(waveform) / predictor.sample_rate)
        expected = predictor.predict_waveform(waveform)
        assert arrays.keys() == expected.keys() and "class_probs" in arrays
        for key in arrays:
            np.testing.assert_allclose(arrays[key], expected[key], atol=1e-5, err_msg=f"{loaded.run_id}: {key}")
        row = predictor.predict_file(path)
        assert row["path"] == str(path) and row["duration"] == round(duration, 3)
        assert row["label"] in predictor.label_names
        with pytest.raises(ParameterError, match="over the limit of 1 s"):
            predictor.predict_source(path, max_seconds=1.0)


def test_batch_prediction_takes_a_classical_run_through_the_same_call(forest_run, song_files, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3 this is not audio" * 10)
    predictor = load_run(forest_run).predictor
    results = list(predict_files(predictor, [song_files[0], broken, song_files[2]]))
    assert [r.path for r in results] == [song_files[0], broken, song_files[2]]
    assert results[1].error is not None and "broken.mp3" in results[1].error
    for result in (results[0], results[2]):
        assert result.error is None and result.row["label"] in ("calm", "busy")
        assert result.row["probs"].keys() == {"calm", "busy"}
