"""Tests for encore.features.cache."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest

from encore.exceptions import ParameterError
from encore.features.cache import FeatureCache, file_digest, settings_digest

SETTINGS = {"sample_rate": 16000, "n_mels": 64, "f_max": None, "mel_scale": "slaney"}
DIGEST = hashlib.sha256(b"some audio").hexdigest()


def _all_files(root):
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_round_trip_and_layout(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # created lazily
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = cache.put(DIGEST, SETTINGS, array)
    assert path == tmp_path / "cache" / settings_digest(SETTINGS) / DIGEST[:2] / f"{DIGEST}.npy"
    loaded = cache.get(DIGEST, SETTINGS)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array)
    assert json.loads((path.parent.parent / "settings.json").read_text()) == SETTINGS


def test_changed_settings_or_audio_miss(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put(DIGEST, SETTINGS, np.ones(3))
    assert cache.get(DIGEST, {**SETTINGS, "n_mels": 128}) is None
    assert cache.get(hashlib.sha256(b"other").hexdigest(), SETTINGS) is None
    assert cache.get(DIGEST, dict(reversed(SETTINGS.items()))) is not None  # key order is irrelevant


def test_get_or_compute_computes_once(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return np.full(5, 2.0)

    first = cache.get_or_compute(DIGEST, SETTINGS, compute)
    second = cache.get_or_compute(DIGEST, SETTINGS, compute)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_entry_is_deleted_and_recomputed(tmp_path, caplog, damage):
    cache = FeatureCache(tmp_path)
    array = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32)
    path = cache.put(DIGEST, SETTINGS, array)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"\x00" * 100)
    with caplog.at_level(logging.WARNING, logger="encore.features.cache"):
        result = cache.get_or_compute(DIGEST, SETTINGS, lambda: array)
    assert "corrupt cache entry" in caplog.text
    np.testing.assert_array_equal(result, array)
    np.testing.assert_array_equal(np.load(path), array)  # rewritten whole


def test_no_temporary_files_are_left(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    for index in range(3):
        cache.put(hashlib.sha256(bytes([index])).hexdigest(), SETTINGS, np.zeros(4))
    files = _all_files(tmp_path)
    assert len(files) == 4 and all(name.endswith((".npy", "settings.json")) for name in files)

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        cache.put(DIGEST, SETTINGS, np.zeros(4))
    assert _all_files(tmp_path) == files


def test_digests(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans several read blocks
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    digest = settings_digest(SETTINGS)
    assert len(digest) == 16 and digest == settings_digest(dict(reversed(SETTINGS.items())))
    assert settings_digest({**SETTINGS, "n_mels": np.int64(64)}) == digest
    with pytest.raises(ParameterError, match="not JSON-serialisable"):
        settings_digest({"window": object()})


@pytest.mark.parametrize("bad", ["", "../etc", "a/b"])
def test_bad_audio_digest(tmp_path, bad):
    with pytest.raises(ParameterError, match="audio_digest"):
        FeatureCache(tmp_path).get(bad, SETTINGS)
