"""Last.fm HetRec and Spotify history readers on small exports the tests write, and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from encore.cli.main import app
from encore.exceptions import FeedbackDataError
from encore.feedback.importers import import_lastfm, import_spotify, import_tracks
from encore.feedback.importers.spotify import spotify_track_id
from encore.store import Store

runner = CliRunner()


@pytest.fixture
def lastfm_root(tmp_path):
    root = tmp_path / "hetrec"
    root.mkdir()
    (root / "artists.dat").write_text(
        'id\tname\turl\tpictureURL\n1\tMALICE MIZER\thttp://x\thttp://y\n2\tThe "Quoted" Band\thttp://x\thttp://y\n',
        encoding="utf-8",
    )
    (root / "tags.dat").write_bytes("tagID\ttagValue\n1\thip-hop\n2\tHip Hop\n3\tm\u00fasica latina\n".encode("latin-1"))
    (root / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n"
        "2\t1\t1\t1\t4\t2009\n"
        "3\t1\t2\t1\t5\t2010\n"
        "3\t2\t3\t1\t5\t2010\n"
        "4\t7\t1\t1\t13\t2010\n"  # artist 7 only here; month 13: quarantined
        "4\t2\t99\t1\t5\t2010\n"  # tag 99 not in tags.dat: quarantined
        "4\t2\n",  # too few fields: quarantined
        encoding="utf-8",
    )
    (root / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t1\t13883\n3\t2\t5\n", encoding="utf-8")
    return root


def test_lastfm_artists_become_tracks_and_tags_and_play_counts_import(lastfm_root, tmp_path):
    with Store.open(tmp_path / "s.sqlite") as store:
        assert import_tracks(store, lastfm_root, layout="lastfm").stored == 3
        tracks = store.tracks().set_index("track_id")
        assert tracks.loc["lastfm-2", "artist"] == 'The "Quoted" Band'
        assert pd.isna(tracks.loc["lastfm-7", "artist"])  # tagged, but not in artists.dat
        report = import_lastfm(store, lastfm_root)
        assert (report.read, report.stored, report.quarantined) == (8, 5, 3)
        reasons = {(row.source_file.rsplit("/", 1)[-1], row.line): row.reason for row in report.quarantine}
        assert "unparsable timestamp '2010-13-01'" in reasons[("user_taggedartists.dat", 5)]
        assert reasons[("user_taggedartists.dat", 6)] == "tagID '99' not in tags.dat"
        assert "expected 6 tab-separated fields" in reasons[("user_taggedartists.dat", 7)]
        events = store.events()
        tags = events[events["kind"] == "tag"]
        assert tags["value_text"].tolist() == ["hip-hop", "Hip Hop", "m\u00fasica latina"]  # ISO-8859-1 decoded
        assert tags["listener_id"].tolist() == ["lastfm-2", "lastfm-3", "lastfm-3"]
        assert tags["timestamp"].iloc[0] == pd.Timestamp("2009-04-01", tz="UTC")
        counts = events[events["kind"] == "play_count"]
        assert counts["value_num"].tolist() == [13883.0, 5.0]
        assert import_lastfm(store, lastfm_root).stored == 0  # again: nothing new


def test_lastfm_wrong_encoding_and_missing_file(lastfm_root, tmp_path):
    with Store.open(tmp_path / "s.sqlite") as store:
        import_tracks(store, lastfm_root, layout="lastfm")
        with pytest.raises(FeedbackDataError, match="--encoding latin-1"):
            import_lastfm(store, lastfm_root, tags_encoding="utf-8")
        (lastfm_root / "tags.dat").unlink()
        with pytest.raises(FeedbackDataError, match=r"tags.dat: missing.*found \["):
            import_lastfm(store, lastfm_root)


@pytest.fixture
def spotify_root(tmp_path):
    root = tmp_path / "my_spotify_data"
    root.mkdir()
    plays = [
        {"endTime": "2020-01-05 21:44", "artistName": "Thee Oh Sees", "trackName": "Ticklish Warrior", "msPlayed": 109737},
        {"endTime": "2020-01-05 22:32", "artistName": "thee oh sees ", "trackName": "ticklish warrior", "msPlayed": 2763},
        {"endTime": "2020-01-05 22:32", "artistName": "thee oh sees ", "trackName": "ticklish warrior", "msPlayed": 2763},
    ]
    (root / "StreamingHistory0.json").write_text(json.dumps(plays), encoding="utf-8")
    more = [
        {"endTime": "2020-01-06 08:00", "artistName": "Can", "trackName": "Vitamin C", "msPlayed": 20000},
        {"endTime": "2020-01-06 08:01", "artistName": "Can", "msPlayed": 1},
        {"endTime": "yesterday", "artistName": "Can", "trackName": "Vitamin C", "msPlayed": 5},
    ]
    (root / "StreamingHistory1.json").write_text(json.dumps(more), encoding="utf-8")
    return root


def test_spotify_history_ids_plays_and_repeats(spotify_root, tmp_path):
    with Store.open(tmp_path / "s.sqlite") as store:
        assert import_tracks(store, spotify_root, layout="spotify").stored == 2  # case and spaces ignored
        report = import_spotify(store, spotify_root)
        assert (report.read, report.stored, report.quarantined) == (6, 4, 2)  # two identical plays both count
        assert {row.line for row in report.quarantine} == {2, 3}
        assert "expected fields" in report.quarantine[0].reason
        events = store.events()
        warrior = spotify_track_id("Thee Oh Sees", "Ticklish Warrior")
        assert events["track_id"].value_counts()[warrior] == 3
        assert events["listener_id"].eq("spotify-my_spotify_data").all()
        assert import_spotify(store, spotify_root).stored == 0
        assert store.track_summary(warrior)["skip_rate"] == pytest.approx(2 / 3)


def test_spotify_plays_of_songs_stored_with_audio_go_to_those_songs(spotify_root, tmp_path):
    """A listener's own audio (title and artist tags, a file name that is neither) and their Spotify
    history: the plays of a song the store holds with audio become that song's plays, in any case
    and spacing, so they give its appeal; the export's other tracks stay items without audio."""
    pytest.importorskip("av")
    from tagged_audio import write_song

    music = tmp_path / "Music"
    write_song(music / "01 - track.flac", "Thee Oh Sees", title="Ticklish  Warrior")
    write_song(music / "02 - track.flac", "Someone Else", title="Vitamin C", seed=1)
    result = runner.invoke(app, ["init", "-w", str(tmp_path / "ws")])
    result = runner.invoke(app, ["import", str(music), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    with Store.open(tmp_path / "ws" / "encore.sqlite") as store:
        songs = store.tracks().set_index("title")
        assert set(songs.index) == {"Ticklish  Warrior", "Vitamin C"}  # the title tags, not the file names
        warrior = songs.loc["Ticklish  Warrior", "track_id"]
        assert import_tracks(store, spotify_root, layout="spotify").stored == 1  # only Can's track: the other has audio
        report = import_spotify(store, spotify_root)
        assert (report.stored, report.quarantined, report.matched) == (4, 2, 1)
        events = store.events()
        assert events["track_id"].value_counts()[warrior] == 3  # "thee oh sees " / "ticklish warrior" too
        assert spotify_track_id("Thee Oh Sees", "Ticklish Warrior") not in set(store.tracks()["track_id"])
        assert store.track_summary(warrior)["skip_rate"] == pytest.approx(2 / 3)
        assert events["track_id"].value_counts()[spotify_track_id("Can", "Vitamin C")] == 1  # another artist's Vitamin C
    ws = str(tmp_path / "ws")
    result = runner.invoke(app, ["feedback", "import", str(spotify_root), "--format", "spotify", "-w", ws])
    assert result.exit_code == 0 and "stored 0" in result.output  # the same entries, whichever song they went to
    assert "set aside" not in result.output  # Can's track is an item without audio now
    ws2 = str(tmp_path / "ws2")  # the same audio and history, and no `--layout spotify` import
    assert runner.invoke(app, ["init", "-w", ws2]).exit_code == 0
    assert runner.invoke(app, ["import", str(music), "-w", ws2]).exit_code == 0
    result = runner.invoke(app, ["feedback", "import", str(spotify_root), "--format", "spotify", "-w", ws2])
    words = " ".join(result.output.split())
    assert result.exit_code == 0 and "of 1 tracks the store does not hold" in words and "--layout spotify" in words
    assert "plays of 1 stored songs matched by artist and title" in result.output


def test_spotify_not_an_export(tmp_path):
    (tmp_path / "StreamingHistory0.json").write_text('{"not": "a list"}', encoding="utf-8")
    with Store.open(tmp_path / "s.sqlite") as store, pytest.raises(FeedbackDataError, match="JSON array"):
        import_spotify(store, tmp_path)


def test_cli_imports_named_exports_and_shows_labels(lastfm_root, spotify_root, tmp_path):
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    for layout, root in (("lastfm", lastfm_root), ("spotify", spotify_root)):
        result = runner.invoke(app, ["import", str(root), "--layout", layout, "-w", ws])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["feedback", "import", str(root), "--format", layout, "-w", ws])
        assert result.exit_code == 0, result.output
    assert "skip rate (plays under 30 s): 0.750 over 4 plays" in result.output
    result = runner.invoke(app, ["labels", "show", "-w", ws])
    assert result.exit_code == 0, result.output
    assert "hip hop" in result.output and "hip-hop (1)" in result.output and "Hip Hop (1)" in result.output
    result = runner.invoke(app, ["store", "current", "-w", ws])
    assert result.exit_code == 0 and "up to date" in result.output


def test_cli_import_csv_of_paths_and_folder_per_label(tmp_path):
    ws = str(tmp_path / "ws")
    runner.invoke(app, ["init", ws])
    for genre, name in (("rock", "a.mp3"), ("jazz", "b.wav"), ("jazz", "c.flac")):
        (tmp_path / "lib" / genre).mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / genre / name).write_bytes(b"\0")
    result = runner.invoke(app, ["import", str(tmp_path / "lib"), "-w", ws])
    assert result.exit_code == 0 and "stored 3" in result.output, result.output
    (tmp_path / "lib" / "songs.csv").write_text("path,artist,label\nrock/a.mp3,Ann,rock\nmissing.mp3,Bob,pop\n")
    result = runner.invoke(app, ["import", str(tmp_path / "lib" / "songs.csv"), "-w", ws])
    assert result.exit_code == 0, result.output
    # A list beside the audio gives the folder scan's ids: a.mp3 is already there.
    assert "read 2, stored 0, duplicate 1, quarantined 1" in result.output
    assert "songs.csv:3: audio file not found" in result.output
    with Store.open(tmp_path / "ws" / "encore.sqlite") as store:
        assert store.label_sets() == {"catalogue": [1], "folder": [1]}
        assert sorted(store.catalogue_labels("folder")["label"]) == ["jazz", "jazz", "rock"]
