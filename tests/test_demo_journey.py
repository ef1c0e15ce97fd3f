"""The whole journey, through the CLI, on a tiny generated catalogue."""

import json

import pytest
from typer.testing import CliRunner

from encore.cli.main import app

runner = CliRunner()
N_STYLES = 5


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("demo") / "ws"
    result = runner.invoke(
        app,
        [
            "demo",
            "--out",
            str(ws),
            "--artists-per-style",
            "4",
            "--songs-per-artist",
            "3",
            "--duration",
            "8",
            "--listeners",
            "40",
            "--set",
            "train.epochs=8",
            "--set",
            "baseline.n_estimators=100",
        ],
    )
    assert result.exit_code == 0, result.output
    return ws, result.output


@pytest.mark.slow
def test_demo_learns_the_styles_of_unseen_artists(demo_ws):
    ws, output = demo_ws
    assert "report" in output and "wall time" in output
    report = json.loads((ws / "reports" / "demo" / "report.json").read_text())
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == {"demo-cnn", "demo-rf"}
    chance = 1 / N_STYLES
    for result in results.values():
        assert result["classification"]["accuracy"]["value"] >= chance + 0.4, result["name"]
        assert result["classification"]["n"] >= 8
    # appeal is learnt from audio by the CNN: a positive rank correlation on held-out songs
    assert results["demo-cnn"]["appeal"]["spearman"]["value"] > 0.2
    html = (ws / "reports" / "demo" / "report.html").read_text()
    assert "demo-cnn" in html and "demo-rf" in html and "<img" in html


@pytest.mark.slow
def test_demo_workspace_serves_the_rest_of_the_cli(demo_ws, tmp_path):
    ws, output = demo_ws
    assert "quarantined 3" in output  # the generated bad rows were caught, the good ones stored
    result = runner.invoke(app, ["predict", "demo-cnn", str(ws / "new-song.mp3"), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["label"] in row["probs"] and abs(sum(row["probs"].values()) - 1) < 1e-3
    assert "appeal" in row["scores"]

    (tmp_path / "broken.mp3").write_bytes(b"this is not audio")
    result = runner.invoke(app, ["predict", "demo-rf", str(tmp_path / "broken.mp3"), str(ws / "new-song.mp3"), "-w", str(ws)])
    assert result.exit_code == 0, result.output  # the bad file is reported and skipped, the batch goes on
    assert "skipped" in result.output and "new-song.mp3" in result.stdout

    result = runner.invoke(
        app, ["evaluate", "demo-cnn", "demo-rf", "-w", str(ws), "--out", str(tmp_path / "rep"), "--n-boot", "200"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()
    assert "accuracy" in result.output


@pytest.mark.slow
def test_cli_trains_on_two_processes_transfers_and_tunes(demo_ws):
    import subprocess
    import sys

    import torch

    ws, _ = demo_ws
    cli = [sys.executable, "-m", "encore.cli.main"]
    quick = ["--set", "train.epochs=2", "--set", "train.chunks_per_song=2"]
    done = subprocess.run(
        [*cli, "train", "-w", str(ws), "--nproc", "2", "--name", "ddp", *quick], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((ws / "runs").glob("ddp*"))
    assert runs, list((ws / "runs").iterdir())
    card = torch.load(runs[-1] / "checkpoint.pt", weights_only=True)["model_card"]
    assert card["training"]["world_size"] == 2
    assert (runs[-1] / "metrics.csv").read_text().count("\n") == 3  # header + one row per epoch, written once

    result = runner.invoke(
        app, ["train", "-w", str(ws), "--name", "probe", "--init-from", str(runs[-1]), "--freeze-backbone", *quick]
    )
    assert result.exit_code == 0, result.output
    probe = sorted((ws / "runs").glob("probe*"))[-1]
    assert torch.load(probe / "checkpoint.pt", weights_only=True)["model_card"]["transfer"]["frozen"] is True

    result = runner.invoke(app, ["tune", "-w", str(ws), "--trials", "2", "--study", "demo", *quick])
    assert result.exit_code == 0, result.output
    assert "trial 0" in result.output and "trial 1" in result.output
    assert (ws / "tune.db").is_file() and (ws / "runs" / "tune-demo" / "best.yaml").is_file()


@pytest.mark.slow
def test_the_demo_model_flags_real_music_as_unlike_its_training_songs(demo_ws):
    """The demo trains on generated songs; real recordings (Emotify, in ../shared/data) are flagged."""
    import os
    from pathlib import Path

    songs = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emotify" / "audio"
    if not songs.is_dir():
        if os.environ.get("ENCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"real data required (ENCORE_REQUIRE_DATA=1) but {songs} is missing")
        pytest.skip(f"real data not found at {songs}")
    ws, _ = demo_ws
    real = [songs / genre / "1.mp3" for genre in ("classical", "rock", "electronic", "pop")]
    result = runner.invoke(app, ["predict", "demo-cnn", *map(str, real), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 4 and all(row["novelty"]["novel"] for row in rows), [r.get("novelty") for r in rows]
    assert "4 of 4 songs are unlike the model's training songs" in result.output
    own = runner.invoke(app, ["predict", "demo-cnn", str(ws / "new-song.mp3"), "-w", str(ws)])
    own_distance = json.loads(own.stdout.strip().splitlines()[-1])["novelty"]["distance"]
    assert own_distance < min(row["novelty"]["distance"] for row in rows)  # a song of the kind it knows is nearer
