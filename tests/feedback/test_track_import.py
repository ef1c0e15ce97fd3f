"""Song import: the label set it names, artists from the files' own tags, songs left without one."""

from __future__ import annotations

import pandas as pd
import pytest

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers import import_tracks
from encore.feedback.importers.tracks import read_artist_tag
from tagged_audio import write_song

pytest.importorskip("av")


@pytest.fixture
def library(tmp_path):
    """lib/<genre>/<song>: four songs, three tagged with an artist (FLAC and MP3), one not."""
    root = tmp_path / "lib"
    write_song(root / "rock" / "a.flac", "Ann")
    write_song(root / "rock" / "b.mp3", "Bob", fmt="mp3", codec="libmp3lame", seed=1)
    write_song(root / "jazz" / "c.flac", "Ann", seed=2)
    write_song(root / "jazz" / "d.flac", None, seed=3)
    return root


def test_read_artist_tag(library, tmp_path):
    assert read_artist_tag(str(library / "rock" / "a.flac")) == "Ann"
    assert read_artist_tag(str(library / "rock" / "b.mp3")) == "Bob"  # ID3 TPE1
    assert read_artist_tag(str(library / "jazz" / "d.flac")) is None
    (tmp_path / "junk.mp3").write_bytes(b"not audio at all")
    assert read_artist_tag(str(tmp_path / "junk.mp3")) is None  # unreadable: no tag, no error


def test_folder_import_reads_artists_from_tags_and_counts_songs_without(store, library):
    report = import_tracks(store, library, label_set="genre")
    assert (report.stored, report.label_set, report.labelled, report.label_version) == (4, "genre", 4, 1)
    assert report.label_set_new_version
    assert report.artists_from_tags == 3 and report.without_artist == 1
    artists = dict(zip(store.tracks()["title"], store.tracks()["artist"]))
    assert artists["a"] == artists["c"] == "Ann" and artists["b"] == "Bob" and pd.isna(artists["d"])


def test_a_csv_fills_the_artist_a_stored_song_lacks_and_names_its_label_set(store, library, tmp_path):
    import_tracks(store, library)
    before = store.tracks().set_index("title")
    listing = tmp_path / "songs.csv"  # outside the folder: songs are matched by their audio file
    listing.write_text(f"path,artist,label\n{library / 'jazz' / 'd.flac'},Cy,swing\n{library / 'rock' / 'a.flac'},Other,rock\n")
    report = import_tracks(store, listing)
    after = store.tracks().set_index("title")
    assert report.stored == 0 and report.duplicate == 2  # the same songs, not new ones
    assert after.loc["d", "artist"] == "Cy" and after.loc["a", "artist"] == "Ann"  # only a missing artist is filled
    assert report.artists_filled == 1 and report.without_artist == 0
    assert after.index.tolist() == before.index.tolist() and after["track_id"].tolist() == before["track_id"].tolist()
    assert report.label_set == "catalogue" and report.labelled == 2  # the default name for a CSV's label column
    assert set(store.label_sets()) == {"folder", "catalogue"}


def test_an_import_without_labels_reports_no_label_set(store, tmp_path):
    write_song(tmp_path / "flat" / "x.flac", None)
    report = import_tracks(store, tmp_path / "flat")
    assert report.label_set is None and report.labelled == 0 and report.without_artist == 1


def test_a_metadata_list_without_paths_names_its_columns_and_builds_the_paths(store, library, tmp_path):
    """A dataset's own metadata (an id column, the class in another name, no path): --path-format
    makes the paths from the row, --map names the label column, and the songs a folder import
    already stored are matched by their files, so their artists are filled in, not duplicated."""
    import_tracks(store, library)
    ids = dict(zip(store.tracks()["title"], store.tracks()["track_id"]))
    meta = library / "meta.csv"
    meta.write_text("Song,Style,Artist\nd,jazz,Cy\na,rock,Ann\nzz,rock,Nobody\nc,,Ann\n")
    report = import_tracks(store, meta, mapping={"label": "Style"}, path_format="{Style}/{Song}.flac", label_set="style")
    assert (report.read, report.stored, report.duplicate, report.quarantined) == (4, 0, 2, 2)
    reasons = {row.line: row.reason for row in report.quarantine}
    assert "audio file not found" in reasons[4] and "zz.flac" in reasons[4]  # the path it made, named
    assert reasons[5] == "--path-format: no value in column Style"  # file lines: the header is line 1
    tracks = store.tracks().set_index("title")
    assert tracks.loc["d", "artist"] == "Cy" and tracks.loc["d", "track_id"] == ids["d"]
    assert len(tracks) == 4 and report.label_set == "style" and report.labelled == 2
    labels = store.catalogue_labels("style", report.label_version).set_index("track_id")["label"]
    assert labels.to_dict() == {ids["d"]: "jazz", ids["a"]: "rock"}


def test_path_format_takes_numbers_and_refuses_a_second_path(store, tmp_path):
    write_song(tmp_path / "genres" / "blues" / "blues.00007.flac", "X")
    listing = tmp_path / "list.csv"
    listing.write_text("genre,n\nblues,7\nblues,8\n")
    report = import_tracks(store, listing, path_format="genres/{genre}/{genre}.{n:05d}.flac")
    assert (report.stored, report.quarantined) == (1, 1)
    assert store.tracks()["path"].iloc[0].endswith("blues.00007.flac")
    with pytest.raises(ParameterError, match="not both"):
        import_tracks(store, listing, mapping={"path": "genre"}, path_format="{genre}")
    with pytest.raises(FeedbackDataError, match="names column 'num'"):
        import_tracks(store, listing, path_format="{genre}/{num}.flac")
