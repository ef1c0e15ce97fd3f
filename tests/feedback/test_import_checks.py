"""Importing files that are mostly right: undecodable lines, implausible values, messages in the CLI's words."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from encore.exceptions import FeedbackDataError
from encore.feedback.importers import import_feedback, import_spotify, import_tracks
from encore.feedback.importers.events import MAX_CLOCK_SKEW, validate_events
from encore.store import Store

HEADER = b"track_id,listener_id,kind,value,timestamp\n"


def good_rows(n: int, start: int = 0) -> bytes:
    return b"".join(f"t1,u{i},tag,calm {i},2024-01-01T00:00:00Z\n".encode() for i in range(start, start + n))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_mostly_valid_file_imports_its_good_rows_and_quarantines_the_undecodable_line(filled_store, tmp_path, suffix):
    data = HEADER + good_rows(10) + b"t2,u9,tag,caf\xe9 music,2024-01-01T00:00:00Z\n" + good_rows(10, start=10)
    path = tmp_path / f"mostly{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    report = import_feedback(filled_store, path)
    assert (report.read, report.stored, report.quarantined) == (21, 20, 1)
    row = report.quarantine[0]
    assert row.line == 12 and row.reason.startswith("not valid utf-8 text (byte 0xe9 at character 14)")
    assert row.raw == "t2,u9,tag,caf\\xe9 music,2024-01-01T00:00:00Z"
    assert filled_store.quarantined()["line"].tolist() == [12]


def test_jsonl_lines_that_do_not_decode_are_quarantined_by_line(filled_store, tmp_path):
    lines = [
        json.dumps({"track_id": "t1", "kind": "like", "value": None, "listener_id": f"u{i}", "timestamp": "2024-01-01"}).encode()
        for i in range(12)
    ]
    lines[4] = b'{"track_id": "t1", "kind": "tag", "value": "\xff", "timestamp": "2024-01-01"}'
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = import_feedback(filled_store, path)
    assert (report.stored, report.quarantined, report.quarantine[0].line) == (11, 1, 5)


def test_a_header_that_does_not_decode_refuses_the_file_with_the_fix(filled_store, tmp_path):
    path = tmp_path / "bad-header.csv"
    path.write_bytes(b"track_id,kind,value,timest\xe4mp\n" + good_rows(3))
    with pytest.raises(FeedbackDataError, match=r"1 of 4 lines .*first on line 1.*--encoding latin-1"):
        import_feedback(filled_store, path)


def test_a_spotify_entry_that_does_not_decode_is_set_aside(tmp_path):
    plays = [
        {"endTime": "2020-01-05 21:44", "artistName": "Band", "trackName": f"Song {i}", "msPlayed": 1000 + i} for i in range(3)
    ]
    text = json.dumps(plays).encode().replace(b"Song 1", b"Song \xe9")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "StreamingHistory0.json").write_bytes(text)
    with Store.open(tmp_path / "s.sqlite") as store:
        import_tracks(store, folder, layout="spotify")
        report = import_spotify(store, folder)
        assert (report.stored, report.quarantined) == (2, 1)
        row = report.quarantine[0]
        assert row.line == 2 and "not valid utf-8 text (byte 0xe9" in row.reason and "\\xe9" in row.raw


def events_frame(rows: list[tuple[str, str, object, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["track_id", "kind", "value", "timestamp"]).astype(str)
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return frame


def test_plays_are_bounded_by_the_track_and_times_by_the_clock():
    now = pd.Timestamp("2025-06-01T12:00:00Z")
    frame = events_frame(
        [
            ("t1", "play", 185_000, "2025-06-01T11:00:00Z"),  # 180 s track, within the 10 s slack
            ("t1", "play", 200_000, "2025-06-01T11:00:00Z"),  # 20 s past its end
            ("t3", "skip", 7_200_000, "2025-06-01T11:00:00Z"),  # duration unknown: 2 h is allowed
            ("t3", "play", 10**15, "2025-06-01T11:00:00Z"),  # ... 31,700 years is not
            ("t1", "like", "", (now + MAX_CLOCK_SKEW / 2).isoformat()),
            ("t1", "like", "", "3000-01-01T00:00:00Z"),
        ]
    )
    columns = {name: name for name in frame.columns}
    _, reasons = validate_events(frame, columns, {"t1": 180.0, "t3": float("nan")}, "test", now=now)
    assert reasons.tolist()[0] == reasons.tolist()[2] == reasons.tolist()[4] == ""
    assert "play value 200000 ms is longer than the track (180.0 s" in reasons[3]
    assert "more than 4 hours" in reasons[5] and "milliseconds" in reasons[5]
    assert "timestamp 3000-01-01T00:00:00Z is 975 years in the future" in reasons[7] and "15 min" in reasons[7]


def test_messages_say_a_value_is_empty_and_name_the_command_to_add_songs():
    frame = pd.DataFrame(
        {
            "track_id": ["t1", "t9999", "t1"],
            "kind": ["rating", "like", None],
            "value": [float("nan"), None, None],
            "timestamp": ["2024-01-01"] * 3,
        }
    )
    _, reasons = validate_events(frame, {name: name for name in frame.columns}, {"t1"}, "test")
    assert reasons[0] == "rating value is empty; give a number of stars in 1..5 (half stars allowed)"
    assert "add the song first with `encore import`" in reasons[1] and "import_tracks" not in reasons[1]
    assert reasons[2].startswith("kind is empty (expected one of")
    assert not any("''" in reason or "nan" in reason for reason in reasons)


def test_the_cli_prints_each_quarantined_row_once_on_one_line(tmp_path):
    from encore.cli.main import app
    from encore.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    with ws.open_store() as store:
        store.add_tracks(pd.DataFrame({"track_id": ["t1"], "duration": [180.0]}))
    path = tmp_path / "events.csv"
    path.write_text("track_id,kind,value,timestamp\nt1,like,,2024-01-01\nt9999,like,,2024-01-01\nt1,play,999999999,2024-01-01\n")
    result = CliRunner().invoke(app, ["feedback", "import", str(path), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    unknown = [line for line in lines if "t9999" in line]
    assert len(unknown) == 1 and "encore import" in unknown[0] and f"{path}:3" in unknown[0]
    assert len([line for line in lines if "longer than the track" in line]) == 1


def test_plays_that_look_like_seconds_are_refused_until_the_unit_is_named(filled_store, tmp_path):
    """A log counting seconds listened, read as milliseconds, would make every play a skip."""
    rows = [f"t{1 + i % 2},u{i},play,{[45, 12.5, 58, 90][i % 4]},2024-01-01T00:00:00Z\n" for i in range(12)]
    path = tmp_path / "plays.csv"
    path.write_bytes(HEADER + "".join(rows).encode() + b"t1,u99,skip,abc,2024-01-01T00:00:00Z\n")
    with pytest.raises(FeedbackDataError, match=r"12 of 12 plays and skips last under a second.*--play-unit s.*nothing"):
        import_feedback(filled_store, path)
    assert filled_store.events().empty
    report = import_feedback(filled_store, path, play_unit="s")
    assert (report.stored, report.quarantined) == (12, 1)  # the unreadable value is still quarantined
    assert sorted(filled_store.events(["play"])["value_num"].unique()) == [12500.0, 45000.0, 58000.0, 90000.0]
    assert import_feedback(filled_store, path, play_unit="ms").stored == 12  # as given: another value, new events
    assert 45.0 in set(filled_store.events(["play"])["value_num"])


def test_the_cli_names_the_play_unit_option(tmp_path):
    from encore.cli.main import app

    result = CliRunner().invoke(app, ["feedback", "import", str(tmp_path / "x.csv"), "-w", str(tmp_path), "--play-unit", "sec"])
    assert result.exit_code == 1 and "--play-unit 'sec' is unknown; use ms or s" in result.output
