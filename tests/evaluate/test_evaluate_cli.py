"""A user's own labelled catalogue (no listener feedback) from import to evaluate and
compare, with warnings as errors: importances only when asked, compare prints only the
paired differences."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from encore.cli.main import app
from encore.workspace import Workspace

SAMPLE_RATE = 8000
FREQS = {"low": 220.0, "mid": 880.0, "high": 2200.0}
CONFIG = """\
features: {sample_rate: 8000, n_fft: 256, hop_length: 128, n_mels: 32, f_max: 4000.0}
model: {name: small_cnn, kwargs: {channels: [8, 16, 16], embedding_dim: 16}}
train: {epochs: 2, batch_size: 8, chunk_seconds: 1.0, chunks_per_song: 2, lr: 0.01, num_threads: 1, log_every: 1000}
baseline: {n_estimators: 20, n_jobs: 1}
labels: {val_fraction: 0.25, test_fraction: 0.3}
"""
runner = CliRunner()


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def catalogue_ws(tmp_path_factory):
    """songs.csv with path, artist and label columns; a CNN and a forest trained on it."""
    root = tmp_path_factory.mktemp("catalogue")
    rng = np.random.default_rng(0)
    rows = []
    for a in range(12):
        for s in range(2):
            label = list(FREQS)[(a + s) % 3]
            t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
            wave = 0.3 * np.sin(2 * np.pi * FREQS[label] * rng.uniform(0.95, 1.05) * t) + 0.05 * rng.standard_normal(t.size)
            path = root / f"a{a}s{s}.wav"
            sf.write(path, wave.astype(np.float32), SAMPLE_RATE)
            rows.append({"path": path.name, "artist": f"artist {a}", "label": label})
    with open(root / "songs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    ws = root / "ws"
    Workspace.init(ws)
    output = invoke("import", root / "songs.csv", "-w", ws)
    assert "24 songs in label set 'catalogue'" in output and "no artist" not in output
    output = invoke("labels", "-w", ws, "-c", root / "config.yaml")
    assert "the only one stored" in output and "without artist" not in output
    invoke("train", "-w", ws, "-c", root / "config.yaml", "--model", "cnn", "--name", "cnn")
    invoke("train", "-w", ws, "-c", root / "config.yaml", "--model", "random_forest", "--name", "rf")
    return root, ws


@pytest.mark.slow
@pytest.mark.filterwarnings("error")
def test_evaluate_leaves_the_slow_importances_out_unless_asked(catalogue_ws, tmp_path):
    root, ws = catalogue_ws
    output = invoke("evaluate", "cnn", "rf", "-w", ws, "--n-boot", "50", "--out", tmp_path / "plain")
    assert "held-out songs" in output and "paired differences" in output
    assert "mel-band importance on the 6 validation songs left out (slow); add --importance" in output
    assert "rf: importances: impurity importance (from training) included; permutation importance" in output
    assert "cnn: temperature" in output and "kept" in output  # why the card serves its temperature, or not
    cnn, rf = json.loads((tmp_path / "plain" / "report.json").read_text())["results"]
    assert not cnn.get("mel_band_importance") and not rf.get("permutation_importance")
    assert rf["feature_importance"]  # free: stored in the forest's card at training
    # the CNN's novelty threshold, set on the validation songs, counted on the held-out ones
    novelty = cnn["novelty"]
    assert novelty["n"] == len(cnn["predictions"]["track_id"]) and novelty["reference"] == "validation"
    assert novelty["flagged"] == sum(cnn["predictions"]["novel"]) and rf["novelty"] is None
    assert f"cnn: novelty: {novelty['flagged']} of {novelty['n']} songs flagged" in output
    assert "<h3>Novelty</h3>" in (tmp_path / "plain" / "report.html").read_text(encoding="utf-8")

    output = invoke("evaluate", "cnn", "rf", "-w", ws, "--n-boot", "50", "--out", tmp_path / "asked", "--importance")
    cnn, rf = json.loads((tmp_path / "asked" / "report.json").read_text())["results"]
    # the forest trains on the validation songs too, so permutation importance there would measure memorisation
    assert cnn["mel_band_importance"] and not rf.get("permutation_importance") and rf["feature_importance"]


@pytest.mark.slow
@pytest.mark.filterwarnings("error")
def test_compare_prints_only_the_paired_differences(catalogue_ws, tmp_path):
    root, ws = catalogue_ws
    output = invoke("compare", "cnn", "rf", "-w", ws, "--n-boot", "50", "--out", tmp_path)
    assert "paired differences" in output and "cnn - rf" in output
    assert "held-out songs" not in output and "balanced accuracy" not in output  # evaluate's per-run table
    assert "encore evaluate cnn rf" in output
    assert json.loads((tmp_path / "report.json").read_text())["comparisons"]


def test_without_validation_songs_the_note_says_there_are_none_to_measure_importance_on():
    import pandas as pd

    from encore.data.manifest import Manifest
    from encore.evaluate.runs import _importance_note

    forest = SimpleNamespace(card=SimpleNamespace())
    frame = pd.DataFrame({"track_id": ["a", "b"], "path": ["a.wav", "b.wav"], "artist": ["", ""], "split": ["train", "test"]})
    note = _importance_note(forest, Manifest(frame, ["x"]), False, {"feature_importance": [{"feature": "f"}]})
    assert note == (
        "importances: impurity importance (from training) included; permutation importance not measured: "
        "the manifest has no validation songs to measure it on"
    )
    frame.loc[0, "split"] = "val"
    assert "on the 1 validation songs left out" in _importance_note(forest, Manifest(frame, ["x"]), False, {})
