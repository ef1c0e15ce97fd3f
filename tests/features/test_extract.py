"""Catalogue-scale extraction: encore.features.extract and ``encore extract``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner

from encore.cli.main import app
from encore.exceptions import ParameterError
from encore.features import FeatureCache, LogMelSpectrogram, compute_handcrafted, handcrafted_feature_names
from encore.shards import parse_shard, shard_positions
from encore.features.extract import (
    extract_features,
    handcrafted_settings,
    logmel_settings,
)

SAMPLE_RATE = 16000


def _write_songs(folder, n: int, seconds: float = 1.0) -> list[str]:
    """``n`` distinct short tones (different pitch and noise), as WAV files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    paths = []
    for index in range(n):
        waveform = 0.3 * np.sin(2 * np.pi * (150 + 40 * index) * t) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"song{index:02d}.wav"
        soundfile.write(path, waveform.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
        paths.append(str(path))
    return paths


@pytest.fixture()
def songs(tmp_path):
    paths = _write_songs(tmp_path / "songs", 4)
    bad = tmp_path / "songs" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEthis is not audio" * 10)
    return paths, str(bad)


def test_extract_computes_caches_reports_and_resumes(tmp_path, songs):
    paths, bad = songs
    cache = FeatureCache(tmp_path / "cache")
    settings = handcrafted_settings(sample_rate=SAMPLE_RATE)
    result = extract_features([*paths, bad], settings=settings, cache=cache)
    assert (result.n_computed, result.n_cached) == (4, 0)
    assert [failure.path for failure in result.failures] == [bad] and "broken.wav" in result.failures[0].reason
    assert result.features[bad] is None
    expected = compute_handcrafted(soundfile.read(paths[2], dtype="float32")[0], sample_rate=SAMPLE_RATE)
    np.testing.assert_allclose(result.features[paths[2]], expected, rtol=1e-5, atol=1e-6)
    assert result.features[paths[0]].shape == (len(handcrafted_feature_names()),)
    again = extract_features([*paths, bad], settings=settings, cache=cache)  # resumption: nothing recomputed
    assert (again.n_computed, again.n_cached, len(again.failures)) == (0, 4, 1)
    np.testing.assert_array_equal(again.features[paths[1]], result.features[paths[1]])


def test_logmel_extraction_equals_the_whole_clip_module(tmp_path, songs):
    paths, _ = songs
    frontend = LogMelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=40, top_db=60.0)
    result = extract_features(paths[:1], settings=logmel_settings(frontend.settings()), cache=FeatureCache(tmp_path))
    whole = frontend(torch.from_numpy(soundfile.read(paths[0], dtype="float32")[0])).numpy()
    np.testing.assert_allclose(result.features[paths[0]], whole, atol=1e-4)


def test_bad_settings():
    with pytest.raises(ParameterError, match="kind"):
        extract_features([], settings={"kind": "mfcc"}, cache=FeatureCache("unused"))
    with pytest.raises(ParameterError, match="workers"):
        extract_features([], settings=handcrafted_settings(sample_rate=16000), cache=FeatureCache("unused"), workers=0)


def test_shards_are_disjoint_and_cover_the_catalogue():
    keys = [f"artist{i % 7}/song{i}.mp3" for i in range(200)]
    shards = [shard_positions(keys, index, 4) for index in range(4)]
    together = sorted(position for shard in shards for position in shard)
    assert together == list(range(200))  # covering, and disjoint (no position twice)
    assert all(len(shard) > 20 for shard in shards)
    assert shard_positions(keys, 1, 4) == shards[1]  # stable
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "-1/3", "a/b", "0/0"):
        with pytest.raises(ParameterError, match="shard"):
            parse_shard(bad)


def test_cli_shards_write_and_replace_their_index(tmp_path, songs):
    paths, bad = songs
    runner = CliRunner()
    cache = tmp_path / "cache"
    args = ["extract", str(tmp_path / "songs"), "--cache", str(cache)]
    outputs = [runner.invoke(app, [*args, "--shard", f"{i}/2"]) for i in range(2)]
    assert all(result.exit_code == 0 for result in outputs), [r.output for r in outputs]
    indexes = sorted(cache.rglob("shard-*-of-2.csv"))
    assert len(indexes) == 2
    rows = [line for index in indexes for line in index.read_text().splitlines()[1:]]
    assert sorted(row.split(",")[0] for row in rows) == sorted([*paths, bad])  # disjoint, covering
    rerun = runner.invoke(app, [*args, "--shard", "0/2"])
    assert rerun.exit_code == 0 and "computed 0" in rerun.output
    assert sorted(cache.rglob("shard-*-of-2.csv")) == indexes
    assert [line for index in indexes for line in index.read_text().splitlines()[1:]] == rows  # replaced, not appended
    assert "failed 1" in "".join(result.output for result in outputs)


@pytest.mark.slow
def test_kill_9_mid_extraction_leaves_no_corrupt_entry_and_a_rerun_completes(tmp_path):
    paths = _write_songs(tmp_path / "songs", 16, seconds=1.0)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "encore.cli.main", "extract", str(tmp_path / "songs"), "--cache", str(cache)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(cache.rglob("*.npy"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the command (and any worker processes)
    process.wait()
    entries = list(cache.rglob("*.npy"))
    assert 2 <= len(entries) < len(paths), "the run was not interrupted mid-way"
    n_features = len(handcrafted_feature_names())
    for entry in entries:  # every entry that exists is whole
        assert np.load(entry, allow_pickle=False).shape == (n_features,)
    settings = handcrafted_settings(sample_rate=SAMPLE_RATE)
    result = extract_features(paths, settings=settings, cache=FeatureCache(cache))
    assert result.n_cached >= len(entries) and result.n_cached + result.n_computed == len(paths)
    assert not result.failures and len(list(cache.rglob("*.npy"))) == len(paths)


def test_segments_are_whole_pieces_a_last_half_piece_and_at_most_max_evenly_spaced():
    from encore.features.extract import segment_waveforms

    songs = [np.arange(35.0), np.arange(34.0), np.arange(3.0), np.arange(100.0)]
    pieces, owner = segment_waveforms(songs, sample_rate=10, seconds=1.0, max_segments=4)
    assert list(owner) == [0, 0, 0, 0, 1, 1, 1, 2, 3, 3, 3, 3]
    assert [p[0] for p in pieces[:4]] == [0, 10, 20, 30] and len(pieces[3]) == 5  # a 5-sample tail is half a segment: kept
    assert [len(p) for p in pieces[4:7]] == [10, 10, 10]  # a 4-sample tail is dropped
    assert len(pieces[7]) == 3  # a song shorter than half a segment is one segment
    assert [p[0] for p in pieces[8:]] == [0, 30, 60, 90]  # 10 pieces, 4 kept from first to last
    with pytest.raises(ParameterError, match="positive"):
        segment_waveforms(songs, sample_rate=10, seconds=0.0, max_segments=4)


def test_feature_rows_of_segments_report_progress_once_a_song(tmp_path):
    from encore.features.extract import compute_feature_matrix, compute_feature_rows

    rng = np.random.default_rng(0)
    songs = [rng.standard_normal(int(8000 * s)).astype(np.float32) * 0.1 for s in (2.5, 1.0)]
    ticks = []
    rows, owner = compute_feature_rows(
        songs, sample_rate=8000, n_fft=512, hop_length=256, segment_seconds=1.0, max_segments=6, callback=ticks.append
    )
    assert list(owner) == [0, 0, 0, 1] and ticks == [1, 1]
    whole, every = compute_feature_rows(songs, sample_rate=8000, n_fft=512, hop_length=256)
    assert list(every) == [0, 1]
    np.testing.assert_array_equal(whole, compute_feature_matrix(songs, sample_rate=8000, n_fft=512, hop_length=256))
    np.testing.assert_array_equal(rows[3], whole[1])  # a 1-s song is its own one segment
