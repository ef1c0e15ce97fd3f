"""`encore cv` on a small synthetic workspace: tone songs in three classes by twelve artists
(and two songs with no artist), a manifest written directly, the random forest and a
one-epoch tiny CNN on three folds and two seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.stats import spearmanr
from typer.testing import CliRunner

from encore.cli.main import app
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.evaluate.cv import HELDOUT_FILE, CVPlan, CVProgress, assign_folds, parse_model_spec, run_cv
from encore.evaluate.cv_summary import paired_over_seeds
from encore.evaluate.metrics import compare_paired
from encore.exceptions import ParameterError
from encore.workspace import Workspace

SAMPLE_RATE = 8000
CLASSES = {"low": 220.0, "mid": 880.0, "high": 2200.0}
CONFIG = """\
features: {sample_rate: 8000, n_fft: 256, hop_length: 128, n_mels: 32, f_max: 4000.0}
model: {name: small_cnn, kwargs: {channels: [8, 16, 16, 16], embedding_dim: 16}}
train: {epochs: 1, batch_size: 8, chunk_seconds: 1.0, chunks_per_song: 2, lr: 0.01, num_threads: 1, log_every: 1000,
        precision: fp32}
baseline: {n_estimators: 20, n_jobs: 1}
"""
FOLDS, SEEDS = 3, [0, 1]


def make_workspace(root: Path) -> tuple[Workspace, Path]:
    """38 songs: 12 artists x 3 songs (four artists per class) and 2 songs with no artist."""
    rng = np.random.default_rng(0)
    ws = Workspace.init(root / "ws")
    (root / "songs").mkdir()
    rows = []
    names = list(CLASSES)
    for i in range(38):
        label = names[(i // 3) % 3] if i < 36 else names[i % 3]
        artist = f"Artist {i // 3}" if i < 36 else None
        t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
        wave = 0.3 * np.sin(2 * np.pi * CLASSES[label] * rng.uniform(0.95, 1.05) * t) + 0.05 * rng.standard_normal(t.size)
        path = root / "songs" / f"s{i:02d}.wav"
        sf.write(path, wave.astype(np.float32), SAMPLE_RATE)
        loud = float(np.sqrt(np.mean(wave**2))) + rng.normal(0, 0.01)
        rows.append(
            {
                "track_id": f"s{i:02d}",
                "path": str(path),
                "artist": artist,
                "title": "",
                "split": "train",
                "label": label if i != 5 else None,
                "appeal": loud,
                TAG_PREFIX + "bright": float(label == "high") * 0.8 + rng.uniform(0, 0.2),
                TAG_PREFIX + "deep": float(label == "low") * 0.7 + rng.uniform(0, 0.3),
            }
        )
    info = {
        "reliability": {
            "appeal": {"reliability": 0.49, "ceiling": 0.7, "n_songs": 38},
            "tag:bright": {"reliability": 0.81, "ceiling": 0.9, "n_songs": 38},
        }
    }
    Manifest(
        frame=pd.DataFrame(rows), label_names=names, tag_names=["bright", "deep"], regression_names=["appeal"], info=info
    ).write(ws.manifest_path())
    config = root / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return ws, config


class Recorder(CVProgress):
    """Records which units trained and which were skipped; can stop the run (a kill) after some units."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.trained: list[tuple[str, int, int]] = []
        self.skipped: list[tuple[str, int, int]] = []
        self.stop_after = stop_after

    def unit_started(self, model, seed, fold, epochs):
        if self.stop_after is not None and len(self.trained) >= self.stop_after:
            raise KeyboardInterrupt
        return None

    def unit_done(self, model, seed, fold, seconds, *, skipped):
        (self.skipped if skipped else self.trained).append((model, seed, fold))


class Tasks(CVProgress):
    """Records each unit's progress tasks (features, embeddings): description, total, units advanced."""

    def __init__(self) -> None:
        self.units: list[tuple[str, int, int]] = []
        self.tasks: dict[tuple[str, int, int], list[list]] = {}

    def unit_started(self, model, seed, fold, epochs):
        self.units.append((model, seed, fold))
        return None

    def task(self, description, total):
        entry = [description, total, 0]
        self.tasks.setdefault(self.units[-1], []).append(entry)
        return lambda n=1: entry.__setitem__(2, entry[2] + n)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A finished cross-validation of the forest and the tiny CNN."""
    root = tmp_path_factory.mktemp("cv")
    ws, config = make_workspace(root)
    plan = CVPlan(
        models=[parse_model_spec("rf:random_forest"), parse_model_spec("cnn")],
        seeds=SEEDS,
        n_folds=FOLDS,
        val_fraction=0.2,
        config_path=str(config),
        n_boot=200,
    )
    tasks = Tasks()
    report = run_cv(ws, plan, name="both", progress=tasks)
    return ws, config, ws.root / "cv" / "both", report, tasks


def test_folds_keep_each_artist_in_one_fold_and_are_stratified(tmp_path):
    ws, _ = make_workspace(tmp_path)
    manifest = Manifest.read(ws.manifest_path())
    folds = assign_folds(manifest, n_folds=FOLDS, seed=0)
    with_artist = folds[folds["artist"].notna()]
    assert (with_artist.groupby("artist")["fold"].nunique() == 1).all()
    # the two songs without an artist are each their own group
    assert folds.loc[folds["artist"].isna(), "group"].nunique() == 2
    counts = folds.dropna(subset=["label"]).groupby(["fold", "label"]).size().unstack(fill_value=0)
    assert counts.shape == (FOLDS, len(CLASSES))
    # four artists of three songs per class over three folds: no fold is more than one artist off the even share
    assert (counts.max(axis=0) - counts.min(axis=0) <= 3 + 1).all()
    assert (counts > 0).all().all()
    assert folds["fold"].value_counts().max() - folds["fold"].value_counts().min() <= 4


def test_every_model_and_seed_sees_the_same_folds(done):
    _, _, out_dir, _, _ = done
    folds = pd.read_csv(out_dir / "folds.csv", dtype={"track_id": str})
    for model in ("rf", "cnn"):
        for seed in SEEDS:
            for fold in range(FOLDS):
                run = out_dir / "runs" / model / f"seed{seed}-fold{fold}"
                held = pd.read_csv(run / HELDOUT_FILE, dtype={"track_id": str})
                assert set(held["track_id"]) == set(folds.loc[folds["fold"] == fold, "track_id"])
                card = json.loads((run / "model_card.json").read_text()) if model == "rf" else None
                trained_on = Manifest.read(card["manifest"]["path"]) if card else None
                if trained_on is not None:  # the forest trains on every song outside the test fold
                    assert set(trained_on.subset("train")["track_id"]) == set(folds.loc[folds["fold"] != fold, "track_id"])
    # the CNN's validation songs come out of the training folds, never the test fold, and are whole artists
    manifest = Manifest.read(out_dir / "folds" / "fold0.csv")
    val, test = manifest.subset("val"), manifest.subset("test")
    assert len(val) and not set(val["track_id"]) & set(test["track_id"])
    train_artists = set(manifest.subset("train")["artist"].dropna())
    assert not set(val["artist"].dropna()) & train_artists


def test_each_unit_shows_its_songs_features_as_progress(done):
    _, _, out_dir, _, tasks = done
    folds = pd.read_csv(out_dir / "folds.csv", dtype={"track_id": str})
    assert set(tasks.units) == {(m, s, k) for m in ("rf", "cnn") for s in SEEDS for k in range(FOLDS)}
    for (model, _, fold), drawn in tasks.tasks.items():
        assert model == "rf"  # the CNN reports epochs, not songs
        held, trained = (folds["fold"] == fold).sum(), (folds["fold"] != fold).sum()
        assert drawn == [
            [f"features of {trained} training songs", trained, trained],
            [f"features of {held} held-out songs", held, held],
        ]
    assert len(tasks.tasks) == len(SEEDS) * FOLDS


def test_predictions_cover_every_song_once_per_seed(done):
    _, _, out_dir, report, _ = done
    songs = set(Manifest.read(done[0].manifest_path()).frame["track_id"])
    for model in ("rf", "cnn"):
        predictions = pd.read_csv(report["predictions"][model], dtype={"track_id": str})
        assert sorted(predictions["seed"].unique()) == SEEDS
        for _, rows in predictions.groupby("seed"):
            assert rows["track_id"].is_unique and set(rows["track_id"]) == songs
    # the seeds train different forests
    rf = pd.read_csv(report["predictions"]["rf"], dtype={"track_id": str})
    a, b = (rf[rf["seed"] == s].set_index("track_id").sort_index()["pred:appeal"] for s in SEEDS)
    assert not np.allclose(a.to_numpy(), b.to_numpy())


def test_the_reports_pooled_metrics_are_those_of_the_kept_predictions(done):
    _, _, out_dir, _, _ = done
    report = json.loads((out_dir / "report.json").read_text())
    for model in ("rf", "cnn"):
        predictions = pd.read_csv(out_dir / "predictions" / f"{model}.csv", dtype={"track_id": str})
        accuracies, spearmans = [], []
        for seed in SEEDS:
            rows = predictions[predictions["seed"] == seed]
            labelled = rows[rows["true:label"].notna()]
            accuracy = float((labelled["true:label"] == labelled["pred:label"]).mean())
            spearman = float(spearmanr(rows["true:appeal"], rows["pred:appeal"]).statistic)
            pooled = report["models"][model]["seeds"][str(seed)]
            assert pooled["classification"]["accuracy"]["value"] == pytest.approx(accuracy, abs=1e-12)
            assert pooled["classification"]["n"] == len(labelled) == 37
            assert pooled["headline"]["spearman:appeal"] == pytest.approx(spearman, abs=1e-9)
            tag = float(spearmanr(rows["true:tag:bright"], rows["pred:tag:bright"]).statistic)
            assert pooled["headline"]["spearman:tag:bright"] == pytest.approx(tag, abs=1e-9)
            accuracies.append(accuracy)
            spearmans.append(spearman)
        over = report["models"][model]["over_seeds"]
        assert over["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
        assert over["accuracy"]["sd"] == pytest.approx(np.std(accuracies, ddof=1))
        assert over["spearman:appeal"]["mean"] == pytest.approx(np.mean(spearmans))
        assert len(report["models"][model]["folds"]) == FOLDS * len(SEEDS)
    assert report["ceilings"]["appeal"]["ceiling"] == 0.7 and report["ceilings"]["tag:bright"]["ceiling"] == 0.9
    assert report["data"]["songs_without_artist"] == 2
    metrics = {c["metric"] for c in report["comparisons"]}
    assert {"accuracy", "appeal Spearman", "tags' mean Spearman", "bright Spearman"} <= metrics
    html = (out_dir / "report.html").read_text()
    assert "songs without an artist" in html and "Paired comparisons" in html and "<img" in html
    assert "http://" not in html and "https://" not in html


def test_the_cnns_novelty_flags_on_its_held_out_songs_are_counted_as_false_alarms(done):
    from encore.inference import load_predictor

    ws, _, out_dir, report, _ = done
    cnn = pd.read_csv(report["predictions"]["cnn"], dtype={"track_id": str})
    paths = Manifest.read(ws.manifest_path()).frame.set_index("track_id")["path"]
    for seed in SEEDS:
        for fold in range(FOLDS):
            predictor = load_predictor(out_dir / "runs" / "cnn" / f"seed{seed}-fold{fold}")
            calibration = predictor.novelty_calibration
            rows = cnn[(cnn["seed"] == seed) & (cnn["fold"] == fold)]
            assert calibration is not None and calibration.usable  # fitted on the fold's validation songs
            assert (rows["novel"] == (rows["novelty"] > calibration.threshold)).all()
            assert (rows["novelty_percentile"] == calibration.threshold_percentile).all()
    first = rows.iloc[0]  # the column is the model's own novelty distance for that song
    served = predictor.predict_file(paths[first["track_id"]])
    assert first["novelty"] == pytest.approx(served["novelty"]["distance"], abs=1e-3)  # served rounds to 3 places
    summary = report["models"]["cnn"]["novelty"]
    seed0 = cnn[cnn["seed"] == SEEDS[0]]
    assert summary["n"] == len(seed0) == 38 and summary["flagged"] == int(seed0["novel"].sum())
    assert summary["ci_low"] <= summary["share"] <= summary["ci_high"]
    assert summary["per_seed"] == {str(s): pytest.approx(cnn[cnn["seed"] == s]["novel"].mean()) for s in SEEDS}
    assert summary["expected_share"] == pytest.approx(1 - calibration.threshold_percentile / 100)
    # a forest gives no novelty score: no column, no count, and the page says why
    rf = pd.read_csv(report["predictions"]["rf"], dtype={"track_id": str})
    assert "novel" not in rf and report["models"]["rf"]["novelty"] is None
    html = (out_dir / "report.html").read_text()
    assert "Novelty false alarms" in html and "classical models have none" in html


def test_paired_over_one_seed_is_compare_paired():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 60)
    a, b = np.where(rng.random(60) < 0.8, truth, (truth + 1) % 3), np.where(rng.random(60) < 0.6, truth, (truth + 2) % 3)
    mine = paired_over_seeds(truth, [a], [b], "accuracy", n_boot=300, seed=4)
    theirs = compare_paired(truth, a, b, "accuracy", n_boot=300, seed=4)
    for key in ("difference", "ci_low", "ci_high", "value_a", "value_b", "n"):
        assert mine[key] == pytest.approx(theirs[key])
    scores = rng.normal(size=60)
    scores[3] = np.nan
    pa, pb = scores + rng.normal(0, 0.5, 60), scores + rng.normal(0, 2.0, 60)
    pa[3] = pb[3] = 0.0
    mine = paired_over_seeds(scores, [pa], [pb], "spearman", n_boot=300)
    theirs = compare_paired(scores, pa, pb, "spearman", n_boot=300)
    assert mine["ci_low"] == pytest.approx(theirs["ci_low"]) and mine["n"] == theirs["n"] == 59
    two = paired_over_seeds(scores, [pa, pa], [pb, pb], "spearman", n_boot=300)
    assert two["difference"] == pytest.approx(theirs["difference"]) and two["seeds"] == 2


def test_a_killed_run_resumes_without_redoing_finished_folds(tmp_path):
    ws, config = make_workspace(tmp_path)
    plan = CVPlan(models=[parse_model_spec("random_forest")], seeds=SEEDS, n_folds=FOLDS, config_path=str(config), n_boot=50)
    first = Recorder(stop_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_cv(ws, plan, name="killed", progress=first)
    assert len(first.trained) == 4
    out_dir = ws.root / "cv" / "killed"
    finished = {u: (out_dir / "runs" / u[0] / f"seed{u[1]}-fold{u[2]}" / HELDOUT_FILE).stat().st_mtime_ns for u in first.trained}
    # the unit the kill interrupted left a half-written run folder behind
    (out_dir / "runs" / "random_forest" / "seed1-fold1").mkdir(parents=True)
    second = Recorder()
    report = run_cv(ws, plan, name="killed", progress=second)
    assert sorted(second.skipped) == sorted(first.trained)
    assert len(second.trained) == len(SEEDS) * FOLDS - 4 and not set(second.trained) & set(first.trained)
    for unit, mtime in finished.items():
        assert (out_dir / "runs" / unit[0] / f"seed{unit[1]}-fold{unit[2]}" / HELDOUT_FILE).stat().st_mtime_ns == mtime
    predictions = pd.read_csv(report["predictions"]["random_forest"])
    assert len(predictions) == 38 * len(SEEDS)
    with pytest.raises(ParameterError, match="--folds 40 needs at least 40 artists.*by 14"):
        run_cv(ws, CVPlan(models=plan.models, n_folds=40, config_path=str(config)), name="too-many")
    # other folds under the same name are refused, not mixed in
    with pytest.raises(ParameterError, match="--folds"):
        run_cv(ws, CVPlan(models=plan.models, seeds=SEEDS, n_folds=2, config_path=str(config)), name="killed")


def test_model_specs_and_their_errors():
    assert parse_model_spec("cnn") == parse_model_spec("cnn:cnn")
    spec = parse_model_spec("big:cnn=configs/big.yaml")
    assert (spec.name, spec.kind, spec.config_path) == ("big", "cnn", "configs/big.yaml")
    assert parse_model_spec("random_forest=a.yaml").name == "random_forest"
    with pytest.raises(ParameterError, match="unknown"):
        parse_model_spec("lstm")
    with pytest.raises(ParameterError, match="KIND=CONFIG"):
        parse_model_spec("cnn=")
    with pytest.raises(ParameterError, match="named 'cnn'"):
        CVPlan(models=[parse_model_spec("cnn"), parse_model_spec("cnn=a.yaml")]).check()


def test_cli_runs_resumes_and_reports_in_its_own_words(tmp_path):
    ws, config = make_workspace(tmp_path)
    runner = CliRunner()
    args = [
        "cv",
        "-w",
        str(ws.root),
        "-c",
        str(config),
        "--model",
        "rf:random_forest",
        "--folds",
        "2",
        "--n-boot",
        "50",
        "--name",
        "quick",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 of 38 songs have no artist" in result.output and "report.html" in result.output
    assert (ws.root / "cv" / "quick" / "predictions" / "rf.csv").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "trained and scored" not in again.output
    for bad, words in (
        (["--model", "lstm"], "unknown"),
        (["--device", "gpu"], "--device"),
        (["--seeds", "a"], "--seeds"),
        (["--folds", "3"], "another --folds"),
    ):
        result = runner.invoke(app, [*args, *bad])
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output, result.output


def test_a_cnn_killed_mid_training_resumes_from_its_last_epoch(tmp_path):
    ws, config = make_workspace(tmp_path)
    plan = CVPlan(
        models=[parse_model_spec("cnn")],
        seeds=[0],
        n_folds=FOLDS,
        config_path=str(config),
        overrides=["train.epochs=2"],
        n_boot=50,
    )

    class KillAfterOneEpoch(Recorder):
        def unit_started(self, model, seed, fold, epochs):
            assert epochs == 2

            def after_epoch(row):
                if row["epoch"] == 1:
                    raise KeyboardInterrupt

            return after_epoch

    with pytest.raises(KeyboardInterrupt):
        run_cv(ws, plan, name="cnn", progress=KillAfterOneEpoch())
    run = ws.root / "cv" / "cnn" / "runs" / "cnn" / "seed0-fold0"
    first_epoch = pd.read_csv(run / "metrics.csv")
    assert list(first_epoch["epoch"]) == [1] and (run / "last.pt").is_file() and not (run / HELDOUT_FILE).exists()
    resumed = Recorder()
    run_cv(ws, plan, name="cnn", progress=resumed)
    history = pd.read_csv(run / "metrics.csv")
    assert list(history["epoch"]) == [1, 2]
    assert history.loc[0, "seconds"] == first_epoch.loc[0, "seconds"]  # epoch 1 was kept, not trained again
    assert len(resumed.trained) == FOLDS and (run / HELDOUT_FILE).is_file()


def test_train_finds_its_trainer_in_the_same_table(tmp_path):
    ws, config = make_workspace(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "-w", str(ws.root), "-c", str(config), "--model", "random_forest", "--name", "rf"])
    assert result.exit_code == 0, result.output
    assert (ws.runs_dir / "rf" / "model_card.json").is_file()
    assert "no validation score: it trained on the validation songs too" in result.stdout
    assert f"next: encore evaluate rf -w {ws.root}" in result.stdout
    cnn = ["train", "-w", str(ws.root), "-c", str(config), "--model", "cnn", "--set", "train.epochs=1"]
    result = runner.invoke(app, [*cnn, "--name", "cnn"])
    assert result.exit_code == 0, result.output
    assert "no validation score: the manifest has no labelled validation songs" in result.stdout  # every song trains
    manifest = Manifest.read(ws.manifest_path())
    manifest.frame.loc[manifest.frame["track_id"].isin(["s00", "s03", "s06", "s07"]), "split"] = "val"
    manifest.write(ws.manifest_path())
    result = runner.invoke(app, [*cnn, "--name", "cnn-val"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("validation songs: "))
    assert "accuracy" in line and "macro-F1" in line and "appeal Spearman" in line and "encore evaluate cnn-val" in result.stdout
    result = runner.invoke(app, ["train", "-w", str(ws.root), "-c", str(config), "--model", "lstm", "--name", "lstm"])
    assert result.exit_code == 1 and "'lstm' is unknown" in result.output and "random_forest" in result.output
    assert not (ws.runs_dir / "lstm").exists()  # refused before a run folder is made


def test_the_soft_vote_trains_and_predicts_from_the_cli(tmp_path):
    ws, config = make_workspace(tmp_path)
    runner = CliRunner()
    train = ["train", "-w", str(ws.root), "-c", str(config), "--model", "ensemble", "--name", "vote"]
    result = runner.invoke(app, [*train, "--set", "baseline.svm.c_grid=[1, 10]"])
    assert result.exit_code == 0, result.output
    card = json.loads((ws.runs_dir / "vote" / "model_card.json").read_text())
    assert card["model_type"] == "ensemble"
    assert card["heads"]["classifier"]["ensemble"]["members"] == ["random_forest", "svm"]
    assert card["heads"]["classifier"]["svm"]["C"][0] in (1.0, 10.0)
    song = tmp_path / "songs" / "s00.wav"
    result = runner.invoke(app, ["predict", "vote", str(song), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert row["label"] == "low"  # s00 is a 220 Hz tone, the "low" class
    result = runner.invoke(app, [*train, "--set", "baseline.ensemble.members=[svm]"])
    assert result.exit_code == 1 and "at least two different estimators" in result.output and "Traceback" not in result.output


def test_a_vote_on_segments_trains_predicts_and_cross_validates_from_the_cli(tmp_path):
    ws, config = make_workspace(tmp_path)
    runner = CliRunner()
    segments = ["--set", "baseline.segment_seconds=0.5", "--set", "baseline.svm.c_grid=[1, 10]"]
    train = ["train", "-w", str(ws.root), "-c", str(config), "--model", "ensemble", "--name", "vote", "--segments", "0.5"]
    result = runner.invoke(app, [*train, "--set", "baseline.svm.c_grid=[1, 10]"])
    assert result.exit_code == 0, result.output
    card = json.loads((ws.runs_dir / "vote" / "model_card.json").read_text())
    assert card["segments"] == {"seconds": 0.5, "max_segments": 6}
    assert card["trained_on"]["n_segments"] > card["trained_on"]["n_songs"]
    result = runner.invoke(app, ["predict", "vote", str(tmp_path / "songs" / "s00.wav"), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["label"] == "low"  # s00 is a 220 Hz tone
    args = ["cv", "-w", str(ws.root), "-c", str(config), "--model", "seg:ensemble", "--folds", "2", "--n-boot", "50"]
    result = runner.invoke(app, [*args, *segments, "--name", "seg", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(ws.root / "cv" / "seg" / "predictions" / "seg.csv")
    assert sorted(predictions["track_id"]) == [f"s{i:02d}" for i in range(38)]
    result = runner.invoke(app, [*train[:-2], "--set", "baseline.segment_seconds=0"])
    assert result.exit_code == 1 and "baseline.segment_seconds" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, [*train[:-2], "--segments", "0"])
    assert result.exit_code != 0 and "--segments" in result.output and "Traceback" not in result.output
