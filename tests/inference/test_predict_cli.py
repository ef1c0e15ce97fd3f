"""``encore predict``: files, folders, globs, CSV, bad files skipped, --store and --shard."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from encore.cli.main import app
from encore.exceptions import ParameterError
from encore.shards import parse_shard, select_shard
from encore.workspace import Workspace

runner = CliRunner()


@pytest.fixture()
def catalogue(song_files, tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    for path in song_files:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.mp3").write_bytes(b"ID3 this is not audio" * 10)
    return folder


def json_rows(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_predict_folder_prints_json_lines_and_skips_undecodable(tiny_run, catalogue):
    result = runner.invoke(app, ["predict", str(tiny_run), str(catalogue)])
    assert result.exit_code == 0, result.output
    rows = json_rows(result.stdout)
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == ["song0.wav", "song1.wav", "song2.wav"]
    assert all(set(row["probs"]) == {"ambient", "jazz", "rock"} for row in rows)
    assert "broken.mp3" in result.output and "1 of 4 files could not be decoded" in result.output


def test_predict_glob_to_csv(tiny_run, catalogue, tmp_path):
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", str(tiny_run), str(catalogue / "song*.wav"), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 3 and {"label", "probs.jazz", "scores.appeal", "intervals.appeal.low"} <= set(table.columns)


def test_shards_are_disjoint_and_cover_the_list():
    items = list(range(11))
    shards = [select_shard(items, f"{i}/3") for i in range(3)]
    assert sorted(sum(shards, [])) == items and all(len(s) in (3, 4) for s in shards)
    for bad in ("3/3", "1-3", "0/0"):
        with pytest.raises(ParameterError, match="shard"):
            parse_shard(bad)


def test_store_shards_write_every_song_once_and_reruns_replace(tiny_run, catalogue, tmp_path):
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    for shard in ("0/2", "1/2", "1/2"):  # the second shard twice: a rerun
        result = runner.invoke(app, ["predict", str(tiny_run), str(catalogue), "-w", str(ws), "--store", "--shard", shard])
        assert result.exit_code == 0, result.output
    with Workspace.open(ws).open_store() as store:
        stored = store.predictions(run_id="tiny")
    assert sorted(stored["track_id"].unique()) == ["song0", "song1", "song2"]
    per_track = stored.groupby("track_id").size()
    assert (per_track == 3 + 3 + 1).all()  # 3 classes, 3 tags, 1 score, never duplicated
    assert set(stored["kind"]) == {"class", "tag", "score"}
