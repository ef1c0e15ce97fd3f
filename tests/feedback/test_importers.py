"""Importing feedback files and track lists, quarantining bad rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from encore.exceptions import FeedbackDataError, ParameterError
from encore.feedback.importers import (
    import_feedback,
    import_feedback_frame,
    import_tracks,
    read_emotify_annotations,
    read_table,
)

FEEDBACK_CSV = """\
track_id,listener_id,kind,value,timestamp
t1,u1,rating,4.5,2024-01-01T00:00:00Z
t1,u1,rating,6,2024-01-01T00:00:00Z

t2,u2,like,,2024-01-01 10:00
zz,u2,like,,2024-01-01 10:00
t2,u2,play,1200,1700000000
t2,u2,skip,-1,1700000000
t2,u2,tag,,1700000000
t2,,tag," Hip-Hop ",1700000000123
t3,u3,love,1,not a time
t3,u3,play,1,2,3
t3,u3,rating,2.25,2024-01-01
"""


def _write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


def test_import_feedback_stores_good_rows_and_quarantines_bad(filled_store, tmp_path):
    path = _write(tmp_path / "feedback.csv", FEEDBACK_CSV)
    report = import_feedback(filled_store, path)
    assert (report.read, report.stored, report.duplicate, report.quarantined) == (11, 4, 0, 7)
    by_line = {row.line: row for row in report.quarantine}
    assert sorted(by_line) == [3, 6, 8, 9, 11, 12, 13]
    assert "rating '6'" in by_line[3].reason
    assert "unknown track_id 'zz'" in by_line[6].reason
    assert "skip value '-1'" in by_line[8].reason
    assert by_line[9].reason == "empty tag text"
    assert "unknown kind 'love'" in by_line[11].reason and "unparsable timestamp" in by_line[11].reason
    assert by_line[12].reason == "expected 5 fields, found 6" and by_line[12].raw == "t3,u3,play,1,2,3"
    assert "rating '2.25'" in by_line[13].reason
    assert by_line[3].raw == "t1,u1,rating,6,2024-01-01T00:00:00Z"
    assert all(row.source_file == str(path) for row in report.quarantine)
    assert filled_store.quarantined()["line"].tolist() == sorted(by_line)

    events = filled_store.events()  # in time order: the epoch times are in November 2023
    assert events["kind"].tolist() == ["play", "tag", "rating", "like"]
    assert events["value_num"].tolist()[:1] + events["value_num"].tolist()[2:] == [1200.0, 4.5, 1.0]  # play in ms, like 1
    assert events["value_text"].iloc[1] == "Hip-Hop"  # raw text, normalised later
    assert events["listener_id"].isna().tolist() == [False, True, False, False]
    assert events["timestamp"].tolist() == [
        pd.Timestamp(1700000000, unit="s", tz="UTC"),  # epoch seconds
        pd.Timestamp(1700000000123, unit="ms", tz="UTC"),  # epoch milliseconds
        pd.Timestamp("2024-01-01T00:00:00Z"),
        pd.Timestamp("2024-01-01T10:00:00Z"),
    ]
    assert events["source"].eq("feedback.csv").all()


def test_importing_the_same_file_twice_stores_nothing_new(filled_store, tmp_path):
    path = _write(tmp_path / "feedback.csv", FEEDBACK_CSV)
    import_feedback(filled_store, path)
    again = import_feedback(filled_store, path)
    assert (again.stored, again.duplicate, again.quarantined) == (0, 4, 7)
    assert filled_store.counts()["feedback_events"] == 4
    assert filled_store.counts()["quarantine"] == 7


def test_mapping_and_source(filled_store, tmp_path):
    path = _write(tmp_path / "export.csv", "song,who,what,stars,when\nt1,u1,rating,5,2024-02-02\n")
    mapping = {"track_id": "song", "listener_id": "who", "kind": "what", "value": "stars", "timestamp": "when"}
    report = import_feedback(filled_store, path, mapping=mapping, source="shop")
    assert report.stored == 1
    assert filled_store.events()["source"].tolist() == ["shop"]


def test_missing_column_names_it_the_columns_and_the_fix(filled_store, tmp_path):
    path = _write(tmp_path / "export.csv", "track_id,event,value,timestamp\nt1,like,,2024-01-01\n")
    with pytest.raises(
        FeedbackDataError, match=r"column\(s\) kind not found; columns found: track_id, event.*--map kind=COLUMN"
    ) as err:
        import_feedback(filled_store, path)
    assert "mapping" not in str(err.value) and "{" not in str(err.value)
    assert import_feedback(filled_store, path, mapping={"kind": "event"}).stored == 1


def test_bad_mapping_is_a_parameter_error(filled_store, tmp_path):
    path = _write(tmp_path / "export.csv", FEEDBACK_CSV)
    with pytest.raises(ParameterError, match="--map names song, "):
        import_feedback(filled_store, path, mapping={"song": "track_id"})
    with pytest.raises(FeedbackDataError, match="--map kind=nope"):
        import_feedback(filled_store, path, mapping={"kind": "nope"})


def test_wrong_encoding_counts_the_lines_and_suggests_latin_1(filled_store, tmp_path):
    rows = "".join(f"t1,tag,Café {i},2024-01-01\n" for i in range(3))
    path = _write(tmp_path / "latin.csv", "track_id,kind,value,timestamp\n" + rows + "t2,like,,2024-01-01\n", "latin-1")
    with pytest.raises(
        FeedbackDataError,
        match=r"latin\.csv: 3 of 5 lines are not valid utf-8 text \(first on line 2: "
        r"byte 0xe9 at character 11\).*--encoding latin-1",
    ) as err:
        import_feedback(filled_store, path)
    assert "encoding=" not in str(err.value)
    assert import_feedback(filled_store, path, encoding="latin-1").stored == 4
    assert sorted(filled_store.events()["value_text"].dropna()) == ["Café 0", "Café 1", "Café 2"]


def test_unknown_format_lists_known_ones(filled_store, tmp_path):
    path = _write(tmp_path / "feedback.xlsx", "")
    with pytest.raises(ParameterError, match=r"--format, one of csv, tsv, jsonl, parquet"):
        import_feedback(filled_store, path)
    with pytest.raises(ParameterError, match="--format xml is not known"):
        read_table(path, format="xml")


def test_jsonl_and_parquet(filled_store, tmp_path):
    lines = [
        json.dumps({"track_id": "t1", "kind": "like", "value": None, "timestamp": "2024-01-01"}),
        "{not json",
        json.dumps({"track_id": "t2", "kind": "play", "value": 31000, "timestamp": 1704067200}),
        json.dumps({"track_id": "t2", "kind": "play", "value": "long", "timestamp": 1704067200}),
    ]
    jsonl = _write(tmp_path / "events.jsonl", "\n".join(lines) + "\n")
    report = import_feedback(filled_store, jsonl)
    assert (report.stored, report.quarantined) == (2, 2)
    assert [row.line for row in report.quarantine] == [2, 4]
    assert report.quarantine[1].raw == lines[3]

    frame = pd.DataFrame(
        {
            "track_id": ["t3", "t3"],
            "kind": ["rating", "rating"],
            "value": [3.0, 0.0],
            "timestamp": pd.to_datetime(["2024-05-01", "2024-05-02"]),
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    report = import_feedback(filled_store, tmp_path / "events.parquet")
    assert (report.stored, report.quarantined) == (1, 1)
    assert report.quarantine[0].line == 2 and '"value": 0.0' in report.quarantine[0].raw


def test_numeric_ids_in_json_match_text_ids(store, tmp_path):
    store.add_tracks(pd.DataFrame({"track_id": ["7"]}))
    lines = [
        {"track_id": 7, "kind": "like", "value": None, "timestamp": 1704067200},
        {"track_id": None, "kind": "like", "value": None, "timestamp": 1704067200},
    ]
    path = _write(tmp_path / "ids.jsonl", "\n".join(json.dumps(line) for line in lines))
    report = import_feedback(store, path)
    assert (report.stored, report.quarantine[0].reason) == (1, "missing track_id")
    assert store.events()["track_id"].tolist() == ["7"]


def test_read_table_indexes_rows_by_line_and_strips_header(tmp_path):
    path = _write(tmp_path / "t.csv", "a, b\n1,x\n\n2,\n")
    frame = read_table(path)
    assert frame.columns.tolist() == ["a", "b"]
    assert frame.index.tolist() == [2, 4]
    assert frame["b"].isna().tolist() == [False, True]


def test_line_numbers_survive_quoted_newlines(filled_store, tmp_path):
    text = 'track_id,kind,value,timestamp\nt1,tag,"two\nlines",2024-01-01\nt1,rating,9,2024-01-01\n'
    report = import_feedback(filled_store, _write(tmp_path / "q.csv", text))
    assert [(row.line, row.raw) for row in report.quarantine] == [(4, "t1,rating,9,2024-01-01")]
    assert filled_store.events()["value_text"].tolist() == ["two\nlines"]


def test_read_emotify_annotations(tmp_path):
    header = (
        "track id, genre, amazement, solemnity, tenderness, nostalgia, calmness, power, "
        "joyful_activation, tension, sadness, mood, liked, disliked, age, gender, mother tongue"
    )
    rows = [
        "1,classical,0,1,0,0,0,0,1,0,0,3,1,0,21,1,English",
        "1,classical,0,0,0,1,0,0,0,0,0,3,0,1,41,1,Dutch",
        "101,rock,0,0,0,0,0,0,0,0,0,4,0,0,30,0,Spanish",
    ]
    path = _write(tmp_path / "annotations.csv", "\n".join([header, *rows]) + "\n")
    events = read_emotify_annotations(path)
    assert events.columns.tolist() == ["track_id", "listener_id", "kind", "value", "timestamp", "source"]
    assert list(events.itertuples(index=False, name=None))[0][:3] == ("1", "emotify-0", "play")
    assert events[["listener_id", "kind", "value"]].fillna("").values.tolist() == [
        ["emotify-0", "play", ""],  # every annotation: heard, length unknown
        ["emotify-0", "like", "1"],
        ["emotify-0", "tag", "solemnity"],
        ["emotify-0", "tag", "joyful_activation"],
        ["emotify-1", "play", ""],
        ["emotify-1", "dislike", "1"],
        ["emotify-1", "tag", "nostalgia"],
        ["emotify-2", "play", ""],  # ticked nothing, still a listener of song 101
    ]
    assert events["source"].eq("emotify").all()
    assert events["timestamp"].eq(pd.Timestamp(0, tz="UTC")).all()


def test_emotify_events_import_through_import_feedback_frame(store, tmp_path):
    header = "track id, liked, disliked, " + ", ".join(
        ["amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension", "sadness"]
    )
    path = _write(tmp_path / "a.csv", header + "\n1,1,0,1,0,0,0,0,0,0,0,0\n1,1,0,1,0,0,0,0,0,0,0,0\n")
    store.add_tracks(pd.DataFrame({"track_id": ["1"]}))
    events = read_emotify_annotations(path)
    report = import_feedback_frame(store, events, name="emotify")
    assert (report.read, report.stored) == (6, 6)  # two anonymous participants with the same answers (+ a play each)
    assert import_feedback_frame(store, events, name="emotify").stored == 0


def test_emotify_with_wrong_columns(tmp_path):
    path = _write(tmp_path / "a.csv", "track id, liked\n1,1\n")
    with pytest.raises(FeedbackDataError, match="disliked"):
        read_emotify_annotations(path)


def test_import_tracks_from_csv(store, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("a.mp3", "b.wav"):
        (audio / name).write_bytes(b"\0")
    listing = _write(
        tmp_path / "tracks.csv",
        "path,artist,label,duration\naudio/a.mp3,Ann,rock,12.5\naudio/missing.mp3,Bob,pop,\n"
        f"{audio / 'b.wav'},Cy,,oops\n{audio / 'b.wav'},Cy,jazz,\n",
    )
    report = import_tracks(store, listing)
    assert (report.read, report.stored, report.duplicate, report.quarantined) == (4, 2, 0, 2)
    assert "audio file not found" in report.quarantine[0].reason and report.quarantine[0].line == 3
    assert "duration 'oops'" in report.quarantine[1].reason
    tracks = store.tracks()
    assert sorted(tracks["path"]) == [str((audio / "a.mp3").resolve()), str((audio / "b.wav").resolve())]
    assert tracks["track_id"].str.match(r"^[ab]-[0-9a-f]{10}$").all()
    assert sorted(store.catalogue_labels("catalogue")["label"]) == ["jazz", "rock"]

    again = import_tracks(store, listing)
    assert (again.stored, again.duplicate) == (0, 2)
    assert store.label_sets() == {"catalogue": [1]}  # unchanged labels: no new version
    assert set(tracks["track_id"]) == set(store.tracks()["track_id"])  # stable ids


def test_import_tracks_from_label_folders(store, tmp_path):
    for label, name in [("rock", "1.mp3"), ("rock", "2.flac"), ("jazz", "3.ogg"), ("jazz", ".hidden.mp3")]:
        (tmp_path / "lib" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / label / name).write_bytes(b"\0")
    (tmp_path / "lib" / "rock" / "notes.txt").write_text("not audio")
    report = import_tracks(store, tmp_path / "lib")
    assert (report.read, report.stored, report.quarantined) == (3, 3, 0)
    labels = store.catalogue_labels("folder")
    assert sorted(labels["label"]) == ["jazz", "rock", "rock"]
    assert sorted(store.tracks()["title"]) == ["1", "2", "3"]
    import_tracks(store, tmp_path / "lib", label_set="genre")
    assert store.label_sets() == {"folder": [1], "genre": [1]}

    # A second folder adds its labels to a new version; the first folder's labels stay.
    (tmp_path / "more" / "pop").mkdir(parents=True)
    (tmp_path / "more" / "pop" / "4.mp3").write_bytes(b"\0")
    import_tracks(store, tmp_path / "more")
    assert store.label_sets()["folder"] == [1, 2]
    assert sorted(store.catalogue_labels("folder")["label"]) == ["jazz", "pop", "rock", "rock"]


def test_import_tracks_from_flat_folder_has_no_labels(store, tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.mp3").write_bytes(b"\0")
    assert import_tracks(store, tmp_path / "flat").stored == 1
    assert store.label_sets() == {}


def test_import_tracks_missing_source_or_column(store, tmp_path):
    with pytest.raises(FeedbackDataError, match="no such file or folder"):
        import_tracks(store, tmp_path / "nothing")
    listing = _write(tmp_path / "t.csv", "file,artist\nx.mp3,A\n")
    with pytest.raises(FeedbackDataError, match=r"path not found; columns found: file, artist. .*--map path=COLUMN"):
        import_tracks(store, listing)
