"""Decoding a catalogue's songs once, through the content-addressed cache."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from encore.audio import load_audio
from encore.exceptions import AudioDecodeError
from encore.features.cache import FeatureCache, file_digest

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["DecodeFailure", "decode_songs", "load_waveforms"]


@dataclass(frozen=True)
class DecodeFailure:
    path: str
    reason: str


def load_waveforms(
    paths: Sequence[str | os.PathLike],
    *,
    sample_rate: int,
    cache: FeatureCache | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray | None], list[DecodeFailure]]:
    """Decode every song to mono float32 at ``sample_rate``, skipping bad files.

    Args:
        paths: Audio files.
        sample_rate: Target rate in Hz.
        cache: Where decoded waveforms are kept, keyed by file content and rate.
        callback: Called with 1 after each file (for a progress bar).

    Returns:
        The waveforms (None where a file failed) and the failures, each with its reason.
    """
    settings = {"kind": "waveform", "sample_rate": int(sample_rate), "mono": True}
    waveforms: list[np.ndarray | None] = []
    failures: list[DecodeFailure] = []
    for path in paths:
        try:
            if cache is None:
                waveform = load_audio(path, sample_rate=sample_rate)
            else:
                digest = file_digest(path)
                waveform = cache.get_or_compute(digest, settings, lambda: load_audio(path, sample_rate=sample_rate))
            waveforms.append(np.asarray(waveform, dtype=np.float32))
        except (AudioDecodeError, OSError) as err:
            logger.info("skipping %s: %s", path, err)  # returned in failures, for the caller to report once
            failures.append(DecodeFailure(str(path), str(err)))
            waveforms.append(None)
        if callback is not None:
            callback(1)
    return waveforms, failures


def decode_songs(
    songs: pd.DataFrame,
    *,
    sample_rate: int,
    cache: FeatureCache | None = None,
    decoded: Mapping[str, np.ndarray | None] | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray | None], list[DecodeFailure]]:
    """The songs of manifest rows decoded at ``sample_rate``, by track id (None where a file failed).

    Training, tuning, cross-validation and evaluation all decode a manifest's songs here.

    Args:
        songs: Manifest rows (``track_id`` and ``path`` columns), e.g. ``manifest.frame``
            or one split of it.
        sample_rate: Target rate in Hz.
        cache: Where decoded waveforms are kept, keyed by file content and rate.
        decoded: Songs already decoded at ``sample_rate``, by track id: kept, not decoded
            again, and returned with the others.
        callback: Called with 1 after each decoded file (for a progress bar).

    Returns:
        ``decoded`` and the newly decoded songs by track id, and the new failures.
    """
    out = dict(decoded or {})
    todo = [(t, p) for t, p in zip(songs["track_id"], songs["path"], strict=True) if t not in out]
    # a manifest written before `encore labels` left out the items without audio names no file for them
    no_file = [t for t, p in todo if not isinstance(p, (str, os.PathLike)) or not os.fspath(p)]
    missing = set(no_file)
    todo = [(t, p) for t, p in todo if t not in missing]
    if no_file and callback is not None:
        callback(len(no_file))
    waveforms, failures = load_waveforms([p for _, p in todo], sample_rate=sample_rate, cache=cache, callback=callback)
    out.update({t: w for (t, _), w in zip(todo, waveforms, strict=True)})
    out.update(dict.fromkeys(no_file))
    reason = "the manifest names no audio file for this song; run `encore labels` again to leave it out"
    return out, [*(DecodeFailure(t, reason) for t in no_file), *failures]
