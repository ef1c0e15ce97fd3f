"""Content-addressed on-disk cache of computed features.

An entry is keyed by what it was computed from: the digest of the audio file's bytes and
the digest of the feature settings. Renaming or moving a file keeps its entries; changing
a setting, or the audio, misses. Layout::

    root/<settings_digest>/settings.json                 the settings, for humans
    root/<settings_digest>/<audio_digest[:2]>/<audio_digest>.npy

Writes are atomic (temporary file in the same folder, fsync, ``os.replace``), so readers
never see half an entry and concurrent writers of the same entry are harmless. A
corrupt entry, such as one left by a crash before writes were atomic, is logged,
deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

SETTINGS_DIGEST_LENGTH = 16  # hex characters: 64 bits, plenty for a handful of settings
_READ_BLOCK = 1 << 20  # bytes hashed per read
_DIGEST_PATTERN = re.compile(r"[0-9A-Za-z_-]{2,}")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    Args:
        path: The file.

    Returns:
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ParameterError(
        f"setting value {value!r} of type {type(value).__name__} is not JSON-serialisable; "
        "use numbers, strings, booleans, None, lists or mappings"
    )


def _canonical_json(settings: Mapping[str, Any], **kwargs: Any) -> str:
    return json.dumps(dict(settings), sort_keys=True, default=_json_default, allow_nan=False, **kwargs)


def settings_digest(settings: Mapping[str, Any]) -> str:
    """Short SHA-256 of the settings' canonical JSON (sorted keys, compact separators).

    Note that ``8000`` and ``8000.0`` serialise differently and so give different digests.

    Args:
        settings: JSON-able mapping (numpy scalars and paths are converted).

    Returns:
        The first 16 hex characters of the digest.

    Raises:
        ParameterError: A value cannot be serialised.
    """
    try:
        text = _canonical_json(settings, separators=(",", ":"))
    except ValueError as exc:  # NaN or infinity
        raise ParameterError(f"settings contain a non-finite number ({exc}); use finite values") from exc
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SETTINGS_DIGEST_LENGTH]


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write via a temporary file in ``path``'s folder, fsync, then rename over ``path``."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class MemoryFeatureCache:
    """Feature arrays in memory, keyed like :class:`FeatureCache` (audio digest and settings): for one
    process's repeated work on nearly the same audio, such as an explanation's silenced copies of a
    song, whose untouched segments are the same bytes."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], np.ndarray] = {}

    def get_or_compute(self, audio_digest: str, settings: Mapping[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The remembered array, or ``compute()``'s result, remembered before it is returned."""
        key = (audio_digest, settings_digest(settings))
        if key not in self.entries:
            self.entries[key] = np.asarray(compute())
        return self.entries[key]


class FeatureCache:
    """Feature arrays on disk, keyed by audio digest and settings digest.

    Args:
        root: Cache folder; created on the first write.

    Example:
        >>> cache = FeatureCache("~/.cache/encore/features")
        >>> digest = file_digest("song.flac")
        >>> logmel = cache.get_or_compute(digest, frontend.settings(), lambda: compute(...))
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FeatureCache(root={str(self.root)!r})"

    def path(self, audio_digest: str, settings: Mapping[str, Any]) -> Path:
        """Where the entry for ``audio_digest`` under ``settings`` lives (it may not exist)."""
        if not isinstance(audio_digest, str) or not _DIGEST_PATTERN.fullmatch(audio_digest):
            raise ParameterError(f"audio_digest={audio_digest!r} must be a hex digest such as file_digest(path) returns")
        return self.root / settings_digest(settings) / audio_digest[:2] / f"{audio_digest}.npy"

    def get(self, audio_digest: str, settings: Mapping[str, Any]) -> np.ndarray | None:
        """The cached array, or ``None`` on a miss (a corrupt entry is deleted and misses).

        Args:
            audio_digest: Digest of the audio, e.g. from :func:`file_digest`.
            settings: The settings the features were computed with.

        Returns:
            The array as stored, or ``None``.
        """
        path = self.path(audio_digest, settings)
        try:
            loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError) as exc:
            self._discard(path, str(exc))
            return None
        if not isinstance(loaded, np.ndarray):  # an .npz archive, not an .npy array
            loaded.close()
            self._discard(path, "not a .npy array")
            return None
        return loaded

    def put(self, audio_digest: str, settings: Mapping[str, Any], array: np.ndarray) -> Path:
        """Store ``array`` atomically and return its path.

        Args:
            audio_digest: Digest of the audio.
            settings: The settings the features were computed with.
            array: Numeric array (no Python objects).

        Returns:
            Path of the stored ``.npy`` file.

        Raises:
            ParameterError: ``array`` holds Python objects.
        """
        path = self.path(audio_digest, settings)
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ParameterError(f"array has dtype {array.dtype}; only numeric arrays can be cached")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_settings(path.parent.parent, settings)
        write_atomic(path, lambda handle: np.save(handle, array, allow_pickle=False))
        return path

    def get_or_compute(self, audio_digest: str, settings: Mapping[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array, or ``compute()``'s result, stored before it is returned.

        Args:
            audio_digest: Digest of the audio.
            settings: The settings ``compute`` uses.
            compute: Called with no arguments on a miss.

        Returns:
            The features.
        """
        cached = self.get(audio_digest, settings)
        if cached is not None:
            return cached
        array = np.asarray(compute())
        self.put(audio_digest, settings, array)
        return array

    @staticmethod
    def _discard(path: Path, reason: str) -> None:
        logger.warning("corrupt cache entry %s (%s); deleting it, it will be recomputed", path, reason)
        path.unlink(missing_ok=True)

    @staticmethod
    def _write_settings(folder: Path, settings: Mapping[str, Any]) -> None:
        target = folder / "settings.json"
        if target.exists():
            return
        text = _canonical_json(settings, indent=2) + "\n"
        write_atomic(target, lambda handle: handle.write(text.encode("utf-8")))
