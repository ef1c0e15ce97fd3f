"""`--model blend`: members trained from their own configs at their own rates, their predictions
averaged with the card's weights, through `encore train`, `predict`, `evaluate`, `explain` (the
blend as a whole, or each member), `export` and `encore cv` (the synthetic workspace of test_cv.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from encore.audio import load_audio
from encore.cli.main import app
from encore.config import load_config
from encore.data.manifest import Manifest
from encore.exceptions import ConfigError, ParameterError
from encore.inference import BlendPredictor, load_predictor
from encore.inference.blend import blend_arrays
from encore.models.card import BlendCard, BlendMemberRecord, NoveltyCalibration
from encore.train.blend import member_plans

from test_cv import CONFIG, make_workspace

# The forest member reads the songs at half the CNN's rate, so the blend decodes at two rates.
FOREST = "features: {sample_rate: 4000}\nbaseline: {n_estimators: 20, n_jobs: 1}\n"
BLEND = """\
blend:
  members:
    - {name: net, kind: cnn, config: cnn.yaml, weight: 3}
    - {name: trees, kind: random_forest, config: rf.yaml, weight: 1}
"""


def _configs(root: Path) -> Path:
    folder = root / "configs"
    folder.mkdir()
    (folder / "cnn.yaml").write_text(CONFIG, encoding="utf-8")
    (folder / "rf.yaml").write_text(FOREST, encoding="utf-8")
    (folder / "blend.yaml").write_text(BLEND, encoding="utf-8")
    return folder / "blend.yaml"


FITTED = NoveltyCalibration(fitted=True, quantiles=[0.0, 1.0, 2.0, 4.0], threshold=3.5)


def _member(labels, probs, tags=None, tag_names=(), scores=None, intervals=None, novelty=None, scale=FITTED):
    predictor = SimpleNamespace(
        label_names=list(labels),
        tag_names=list(tag_names),
        regression_names=["appeal"] if scores is not None else [],
        novelty_calibration=scale if novelty is not None else None,
        sample_rate=16000,
        device="cpu",
    )
    arrays = {"class_probs": np.asarray(probs, dtype=np.float32)}
    if tags is not None:
        arrays["tag_probs"] = np.asarray(tags, dtype=np.float32)
    if scores is not None:
        arrays["scores"] = np.asarray(scores, dtype=np.float32)
    if intervals is not None:
        arrays["score_intervals"] = np.asarray(intervals, dtype=np.float32)
    if novelty is not None:
        arrays["novelty_distance"] = np.float32(novelty)
    return predictor, arrays


def test_the_blend_is_the_weighted_mean_of_its_members_by_name():
    # member a orders its classes differently and has no tag head; b has tags but no scores
    a, a_arrays = _member(["rock", "pop"], [0.2, 0.8], scores=[1.0], intervals=[[0.5, 1.5]], novelty=3.0)
    b, b_arrays = _member(["pop", "rock"], [0.4, 0.6], tags=[0.9, 0.1], tag_names=["sad", "calm"])
    out = blend_arrays(
        [(a, 0.75, a_arrays), (b, 0.25, b_arrays)],
        label_names=["pop", "rock"],
        tag_names=["calm", "sad"],
        regression_names=["appeal"],
    )
    np.testing.assert_allclose(out["class_probs"], [0.75 * 0.8 + 0.25 * 0.4, 0.75 * 0.2 + 0.25 * 0.6], rtol=1e-6)
    np.testing.assert_allclose(out["tag_probs"], [0.1, 0.9], rtol=1e-6)  # b alone has tags: its weight renormalised to 1
    np.testing.assert_allclose(out["scores"], [1.0])
    np.testing.assert_allclose(out["score_intervals"], [[0.5, 1.5]])
    assert float(out["novelty_distance"]) == 3.0
    # many songs at once: the same mean row by row
    many = blend_arrays(
        [
            (a, 0.5, {"class_probs": np.array([[0.2, 0.8], [1.0, 0.0]])}),
            (b, 0.5, {"class_probs": np.array([[0.4, 0.6], [1.0, 0.0]])}),
        ],
        label_names=["pop", "rock"],
        tag_names=[],
        regression_names=[],
    )
    np.testing.assert_allclose(many["class_probs"], [[0.6, 0.4], [0.5, 0.5]], rtol=1e-6)


def test_the_novelty_distance_and_its_scale_come_from_the_same_member():
    # a: a probe whose novelty scale could not be fitted (too few songs), yet it emits a
    # distance; b: one with a fitted scale. The blend reads b's distance on b's scale, not
    # a's distance on b's scale.
    unfitted = NoveltyCalibration(fitted=False, reason="too few training songs")
    a, a_arrays = _member(["rock", "pop"], [0.2, 0.8], novelty=100.0, scale=unfitted)
    b, b_arrays = _member(["rock", "pop"], [0.4, 0.6], novelty=1.0)
    out = blend_arrays([(a, 0.5, a_arrays), (b, 0.5, b_arrays)], label_names=["rock", "pop"], tag_names=[], regression_names=[])
    assert float(out["novelty_distance"]) == 1.0
    card = BlendCard(
        sample_rate=16000,
        members=[BlendMemberRecord(name=n, kind="cnn", weight=0.5, sample_rate=16000) for n in "ab"],
        label_names=["rock", "pop"],
    )
    blend = BlendPredictor([("a", a, 0.5), ("b", b, 0.5)], card)
    assert blend.novelty_calibration is FITTED
    described = blend.describe(out)
    assert described["novelty"] == {"score": 0.333, "novel": False, "distance": 1.0}
    # no member with a fitted scale: no novelty at all, rather than a distance on no scale
    out = blend_arrays([(a, 1.0, a_arrays)], label_names=["rock", "pop"], tag_names=[], regression_names=[])
    assert "novelty_distance" not in out
    assert BlendPredictor([("a", a, 1.0)], card).novelty_calibration is None


def test_member_configs_are_read_beside_the_blend_and_take_its_overrides(tmp_path):
    path = _configs(tmp_path)
    config = load_config(path, ['blend.overrides=["baseline.seed=7", "train.seed=7"]'])
    plans = member_plans(config)
    assert [(p.member.name, p.weight, p.sample_rate) for p in plans] == [("net", 0.75, 8000), ("trees", 0.25, 4000)]
    assert all(p.config.baseline.seed == 7 and p.config.train.seed == 7 for p in plans)
    assert plans[1].config.baseline.n_estimators == 20  # its own file
    with pytest.raises(ParameterError, match="at least two blend.members"):
        member_plans(load_config(None, ["blend.members=[{name: a, kind: cnn, weight: 1}]"]))
    (tmp_path / "configs" / "rf.yaml").unlink()
    with pytest.raises(ConfigError, match="blend member 'trees'.*does not exist"):
        member_plans(load_config(path))
    with pytest.raises(ConfigError, match="each member its own name"):
        load_config(None, ["blend.members=[{name: a, kind: cnn, weight: 1}, {name: a, kind: svm, weight: 1}]"])


@pytest.fixture(scope="module")
def blend_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    ws, _ = make_workspace(root)
    manifest = Manifest.read(ws.manifest_path())
    manifest.frame["split"] = ["test" if i % 4 == 1 else "val" if i % 4 == 2 else "train" for i in range(len(manifest.frame))]
    manifest.write(ws.manifest_path())
    path = _configs(root)
    train = ["train", "-w", str(ws.root), "-c", str(path), "--model", "blend", "--name", "blend"]
    result = CliRunner().invoke(app, [*train, "--set", "baseline.n_estimators=30"])
    assert result.exit_code == 0, result.output
    return ws, root, path, ws.runs_dir / "blend"


def test_a_blend_trains_each_member_and_predicts_their_weighted_mean(blend_run):
    ws, root, _, run = blend_run
    card = json.loads((run / "blend_card.json").read_text())
    assert [(m["name"], m["kind"], m["weight"], m["sample_rate"]) for m in card["members"]] == [
        ("net", "cnn", 0.75, 8000),
        ("trees", "random_forest", 0.25, 4000),
    ]
    assert (run / "members" / "net" / "checkpoint.pt").is_file()
    trees = json.loads((run / "members" / "trees" / "model_card.json").read_text())
    assert trees["config"]["baseline"]["n_estimators"] == 30  # --set reached the member
    assert card["trained_on_validation"] is True  # the forest trains on the validation songs
    song = root / "songs" / "s03.wav"  # an 880-Hz tone, "mid"
    blend = load_predictor(run)
    assert isinstance(blend, BlendPredictor) and blend.sample_rate == 8000
    net, trees_p = load_predictor(run / "members" / "net"), load_predictor(run / "members" / "trees")
    expected = 0.75 * net.predict_source(str(song))[0]["class_probs"] + 0.25 * trees_p.predict_source(str(song))[0]["class_probs"]
    got, duration = blend.predict_source(str(song))
    np.testing.assert_allclose(got["class_probs"], expected, rtol=1e-5, atol=1e-6)
    assert duration == pytest.approx(2.0, abs=0.01)
    # a waveform at the blend's rate is resampled for the 4-kHz member: close to decoding at 4 kHz
    waveform = load_audio(str(song), sample_rate=8000)
    np.testing.assert_allclose(blend.predict_waveform(waveform)["class_probs"], expected, atol=0.02)
    result = CliRunner().invoke(app, ["predict", "blend", str(song), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert row["label"] == "mid" and row["probs"]["low"] == pytest.approx(
        float(expected[blend.label_names.index("low")]), abs=1e-4
    )
    assert set(row["tags"]) == {"bright", "deep"} and "appeal" in row["scores"]


def test_a_blend_evaluates_explains_itself_and_its_members_and_refuses_onnx_in_its_own_words(blend_run, tmp_path):
    ws, root, _, run = blend_run
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "blend", "-w", str(ws.root), "--importance"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run / "evaluation-test.json").read_text())
    assert evaluation["classification"]["accuracy"]["value"] > 0.5 and "members/NAME" in evaluation["importance_note"]
    song = root / "songs" / "s00.wav"
    grid = ["--segments", "4", "--bands", "2", "--target", "low"]
    result = runner.invoke(app, ["explain", "blend", str(song), "-w", str(ws.root), "--out", str(tmp_path / "why"), *grid])
    assert result.exit_code == 0, result.output
    whole = json.loads((tmp_path / "why" / "explanation.json").read_text())["explanations"]
    assert len(whole) == 1 and "member" not in whole[0] and whole[0]["method"] == "audio_occlusion"
    blend = load_predictor(run)
    value = blend.predict_source(str(song))[0]["class_probs"][blend.label_names.index("low")]
    assert whole[0]["value"] == pytest.approx(float(value), abs=0.02)  # through the STFT and back: nearly the song
    args = ["explain", "blend", str(song), "-w", str(ws.root), "--out", str(tmp_path / "each"), "--members", *grid]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    each = json.loads((tmp_path / "each" / "explanation.json").read_text())["explanations"]
    assert [(e["member"], e["weight"], e["method"]) for e in each] == [
        ("net", 0.75, "occlusion"),
        ("trees", 0.25, "audio_occlusion"),
    ]
    result = runner.invoke(app, ["explain", "blend", str(song), "-w", str(ws.root), "--method", "integrated_gradients"])
    assert result.exit_code == 1 and "is a blend" in result.output and "--members" in result.output
    result = runner.invoke(app, ["export", "blend", "-w", str(ws.root)])
    assert result.exit_code == 1 and "is a blend" in result.output and "members/net" in result.output
    assert "Traceback" not in result.output


def test_encore_cv_runs_a_blend_on_the_same_folds_with_its_seeds(tmp_path):
    ws, _ = make_workspace(tmp_path)
    path = _configs(tmp_path)
    args = ["cv", "-w", str(ws.root), "--model", f"b:blend={path}", "--model", f"trees:random_forest={path.parent / 'rf.yaml'}"]
    result = CliRunner().invoke(
        app, [*args, "--folds", "2", "--seeds", "0,1", "--n-boot", "50", "--val-fraction", "0", "--name", "cv"]
    )
    assert result.exit_code == 0, result.output
    out = ws.root / "cv" / "cv"
    plan = json.loads((out / "plan.json").read_text())
    assert set(plan["models"]["b"]["config"]["blend_members"]) == {"net", "trees"}
    for seed in (0, 1):
        unit = out / "runs" / "b" / f"seed{seed}-fold0"
        member = json.loads((unit / "members" / "trees" / "model_card.json").read_text())
        assert member["config"]["baseline"]["seed"] == seed  # the seed reached the member
        heldout = pd.read_csv(unit / "heldout.csv", dtype={"track_id": str})
        trees = pd.read_csv(out / "runs" / "trees" / f"seed{seed}-fold0" / "heldout.csv", dtype={"track_id": str})
        assert list(heldout["track_id"]) == list(trees["track_id"])  # the same held-out songs
    predictions = pd.read_csv(out / "predictions" / "b.csv")
    assert len(predictions) == 2 * 38 and {"prob:low", "pred:appeal", "pred:tag:bright"} <= set(predictions.columns)
    # a held-out prediction is the members' weighted mean, each member predicting the song itself
    unit = out / "runs" / "b" / "seed1-fold1"
    heldout = pd.read_csv(unit / "heldout.csv", dtype={"track_id": str}).head(4)
    net, trees = load_predictor(unit / "members" / "net"), load_predictor(unit / "members" / "trees")
    for _, row in heldout.iterrows():
        song = str(tmp_path / "songs" / f"{row['track_id']}.wav")
        a, b = net.predict_source(song)[0], trees.predict_source(song)[0]
        for j, name in enumerate(net.label_names):
            expected = 0.75 * a["class_probs"][j] + 0.25 * b["class_probs"][trees.label_names.index(name)]
            assert row[f"prob:{name}"] == pytest.approx(expected, abs=1e-4)
        assert row["pred:appeal"] == pytest.approx(0.75 * a["scores"][0] + 0.25 * b["scores"][0], abs=1e-4)


def test_the_service_serves_a_blend(blend_run):
    from fastapi.testclient import TestClient

    from encore.serve import ServeSettings, create_app

    ws, root, _, run = blend_run
    song = root / "songs" / "s03.wav"
    expected = load_predictor(run).predict_source(str(song))[0]
    app = create_app(ServeSettings(run=run, workspace=ws.root, workers=1))
    with TestClient(app) as client:
        response = client.post("/v1/predict", files={"file": ("s03.wav", song.read_bytes(), "audio/wav")})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == "mid"
        for j, name in enumerate(load_predictor(run).label_names):
            assert body["probs"][name] == pytest.approx(float(expected["class_probs"][j]), abs=1e-4)
        response = client.post(
            "/v1/predict", files={"file": ("s03.wav", song.read_bytes(), "audio/wav")}, data={"explain": "true"}
        )
        explained = response.json()
        assert explained["probs"] == body["probs"]  # the same prediction, with the blend's explanation
        assert explained["explanation"]["method"] == "audio_occlusion" and explained["explanation"]["target"] == "mid"
        assert explained["explanation"]["image"].startswith("data:image/png;base64,")
        model = client.get("/v1/models").json()["models"][0]
        assert model["backend"] == "blend" and [m["name"] for m in model["blend"]] == ["net", "trees"]
    app.state.encore.store.close()
