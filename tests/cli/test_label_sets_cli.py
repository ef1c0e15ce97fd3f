"""A user's own labelled songs, first time: `encore import` then `encore labels` with no
further option; what the commands say about label sets and artists."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from encore.cli.main import app
from encore.workspace import Workspace
from tagged_audio import write_song

pytest.importorskip("av")
runner = CliRunner()


def invoke(*args) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())  # rich wraps; compare words


@pytest.fixture
def workspace(tmp_path):
    Workspace.init(tmp_path / "ws")
    for genre in ("rock", "jazz"):
        for i in range(6):
            write_song(tmp_path / "lib" / genre / f"{genre}{i}.flac", f"{genre} band {i % 3}" if i < 5 else None, seed=i)
    return tmp_path


def test_labels_uses_the_only_label_set_the_import_stored(workspace):
    code, output = invoke("import", workspace / "lib", "-w", workspace / "ws", "--label-set", "genre")
    assert code == 0, output
    assert "12 songs in label set 'genre' (version 1)" in output
    assert "read from the files' own tags for 10 songs" in output
    assert "2 songs have no artist" in output and "each is its own group in the splits" in output

    code, output = invoke("labels", "-w", workspace / "ws")
    assert code == 0, output
    assert "label set 'genre', the only one stored" in output and "labels.label_set" in output
    assert "catalogue:genre" in output
    assert "6 (2 songs without artist: each its own group)" in output  # never a silent artist count
    assert "none (no likes, ratings, plays or skips)" in output  # no feedback: no appeal score to learn
    assert "2 of 12 songs have no artist" in output and "encore import" in output


def test_several_label_sets_and_none_chosen_lists_them_and_names_the_option(workspace):
    invoke("import", workspace / "lib", "-w", workspace / "ws", "--label-set", "genre")
    listing = workspace / "songs.csv"
    listing.write_text(f"path,label\n{workspace / 'lib' / 'rock' / 'rock0.flac'},loud\n")
    code, output = invoke("import", listing, "-w", workspace / "ws")
    assert code == 0, output
    assert "label set 'catalogue'" in output and "the default name" in output and "--label-set" in output

    code, output = invoke("labels", "-w", workspace / "ws")
    assert code == 1
    assert "catalogue (version 1), genre (version 1)" in output and "--set labels.label_set=NAME" in output

    code, output = invoke("labels", "-w", workspace / "ws", "--set", "labels.label_set=mood")
    assert code == 1 and "'mood' is not in the store" in output and "genre (version 1)" in output

    code, output = invoke("labels", "-w", workspace / "ws", "--set", "labels.label_set=catalogue")
    assert code == 0 and "catalogue:catalogue" in output


def test_no_label_set_and_no_classes_says_how_to_get_labels(tmp_path):
    Workspace.init(tmp_path / "ws")
    write_song(tmp_path / "flat" / "x.flac", "Ann")
    invoke("import", tmp_path / "flat", "-w", tmp_path / "ws")
    code, output = invoke("labels", "-w", tmp_path / "ws")
    assert code == 1 and "no label set" in output and "--label-set NAME" in output and "labels.classes" in output


def test_feedback_without_any_label_set_makes_a_scores_only_manifest_a_model_trains_on(tmp_path):
    """A listener's own music and their likes, plays and skips, no genres: the appeal score is the
    target, no class is invented, and a model trains and predicts it."""
    import json

    Workspace.init(tmp_path / "ws")
    for i in range(12):
        write_song(tmp_path / "music" / f"{i:02d}.flac", f"band {i % 4}", seed=i, title=f"song {i}")
    invoke("import", tmp_path / "music", "-w", tmp_path / "ws")
    store_songs = Workspace.open(tmp_path / "ws").open_store()
    with store_songs as db:
        ids = list(db.tracks().sort_values("title")["track_id"])
    rows = ["track_id,listener_id,kind,value,timestamp"]
    for n, track in enumerate(ids):
        for listener in range(3):
            rows.append(f"{track},u{listener},{'like' if (n + listener) % 3 else 'dislike'},1,2026-01-0{listener + 1}T10:00:00Z")
    (tmp_path / "events.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, output = invoke("feedback", "import", tmp_path / "events.csv", "-w", tmp_path / "ws")
    assert code == 0, output
    code, output = invoke("labels", "-w", tmp_path / "ws")
    assert code == 0, output
    assert "no class labels" in output and "scores and tags are the targets" in output
    assert "none (scores and tags only)" in output and "appeal (12 songs)" in output
    manifest = json.loads((tmp_path / "ws" / "manifests" / "default.json").read_text())
    assert manifest["label_names"] == [] and manifest["regression_names"] == ["appeal"]
    code, output = invoke("train", "-w", tmp_path / "ws", "--model", "random_forest", "--name", "rf")
    assert code == 0, output
    code, output = invoke("predict", "rf", tmp_path / "music" / "00.flac", "-w", tmp_path / "ws")
    assert code == 0 and '"appeal"' in output and '"label"' not in output


def test_songs_a_label_set_leaves_unlabelled_take_their_labellers_votes(workspace):
    """The labelling loop on a folder-labelled catalogue: new songs, labelled through tag feedback
    (an `encore suggest` queue), join the label set's classes; the set still decides where it has a label."""
    import pandas as pd

    from encore.data.manifest import Manifest

    ws = workspace / "ws"
    invoke("import", workspace / "lib", "-w", ws, "--label-set", "genre")
    assert invoke("labels", "-w", ws)[0] == 0
    first = Manifest.read(ws / "manifests" / "default.csv").frame.set_index("track_id")["split"]
    for i in range(3):
        write_song(workspace / "new" / f"new{i}.flac", f"new band {i}", seed=20 + i)
    invoke("import", workspace / "new", "-w", ws)
    code, output = invoke("labels", "-w", ws)
    assert code == 0 and "12 song(s) kept their split from the manifest before" in output
    frame = Manifest.read(ws / "manifests" / "default.csv").frame
    assert (frame.set_index("track_id")["split"].loc[first.index] == first).all()  # a rebuild moves no earlier song
    assert frame["label"].isna().sum() == 3
    new = sorted(frame.loc[frame["label"].isna(), "track_id"])
    rock0 = frame.loc[frame["path"].str.endswith("rock0.flac"), "track_id"].item()
    rows = [(new[0], "alice", "jazz"), (new[1], "alice", "Rock"), (new[2], "alice", "loud"), (rock0, "alice", "jazz")]
    events = pd.DataFrame(rows, columns=["track_id", "listener_id", "value"]).assign(kind="tag", timestamp="2026-01-01T00:00:00Z")
    events.to_csv(workspace / "queue.csv", index=False)
    assert invoke("feedback", "import", workspace / "queue.csv", "-w", ws)[0] == 0

    code, output = invoke("labels", "-w", ws)  # one labeller is under the default labels.min_votes=3, and it says so
    assert code == 0 and "--set labels.min_votes=1" in output
    assert Manifest.read(ws / "manifests" / "default.csv").frame["label"].isna().sum() == 3
    code, output = invoke("labels", "-w", ws, "--set", "labels.min_votes=1")
    assert code == 0 and "catalogue:genre + listener tags (2)" in output
    labels = Manifest.read(ws / "manifests" / "default.csv").frame.set_index("track_id")["label"]
    assert labels[new[0]] == "jazz" and labels[new[1]] == "rock"  # a class named in any spelling
    assert labels[new[2]] is None or pd.isna(labels[new[2]])  # a tag that names no class labels nothing
    assert labels[rock0] == "rock"  # the set's own label is kept over a listener's vote
