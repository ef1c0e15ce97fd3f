"""The demo's synthetic catalogue: songs in five styles plus simulated listener feedback.

``encore demo`` needs data a person would hear as different styles and feedback given the
way real listeners give it. This module writes the audio and two tables:

- ``catalogue.csv`` (``track_id,path,artist,title,duration``): what an importer reads;
  ``path`` is relative to the catalogue's folder. It has no style column: styles must be
  learnt from listener tags.
- ``truth.csv`` (``track_id,style,appeal``): the hidden truth, for tests and the demo's
  final sanity line only.

The synthesis lives in :mod:`encore.demo.synth_audio` and the listener model in
:mod:`encore.demo.synth_feedback`; their public names are re-exported here.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from encore.demo.synth_audio import STYLES, SongSpec, synthesize_song
from encore.demo.synth_feedback import PERSONAL_TAGS, TAG_SYNONYMS, simulate_feedback
from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = [
    "PERSONAL_TAGS",
    "STYLES",
    "TAG_SYNONYMS",
    "SongSpec",
    "generate_catalogue",
    "generate_song_file",
    "simulate_feedback",
    "synthesize_song",
]

_FORMATS = {"mp3": "MP3", "ogg": "OGG", "wav": "WAV", "flac": "FLAC"}
_NAME_A = (
    "Velvet",
    "Static",
    "Paper",
    "Neon",
    "Hollow",
    "Silver",
    "Quiet",
    "Broken",
    "Golden",
    "Lunar",
    "Crimson",
    "Electric",
    "Wandering",
    "Glass",
    "Midnight",
    "Copper",
    "Amber",
    "Distant",
    "Wild",
    "Faded",
    "Northern",
    "Cobalt",
    "Secret",
    "Little",
    "Iron",
    "Violet",
    "Sleepy",
    "Rusty",
    "Marble",
    "Open",
)
_NAME_B = (
    "Static",
    "Harbor",
    "Tigers",
    "Lanterns",
    "Orchard",
    "Engines",
    "Machines",
    "Rivers",
    "Echoes",
    "Pilots",
    "Satellites",
    "Foxes",
    "Parade",
    "Arcade",
    "Signals",
    "Gardens",
    "Ghosts",
    "Atlas",
    "Horizon",
    "Wolves",
    "Caravan",
    "Motel",
    "Circuit",
    "Tides",
    "Bureau",
    "Comets",
    "Society",
    "Cartel",
    "Quartet",
    "Collective",
)
_TITLE_A = (
    "Slow",
    "Blue",
    "Late",
    "Summer",
    "Paper",
    "Lost",
    "Falling",
    "Northern",
    "Quiet",
    "Electric",
    "Golden",
    "Hidden",
    "Endless",
    "Broken",
    "Silent",
    "Open",
    "Second",
    "Last",
    "Neon",
    "Morning",
)
_TITLE_B = (
    "Drive",
    "Lights",
    "Rain",
    "Hearts",
    "Streets",
    "Tide",
    "Signal",
    "Bloom",
    "Waves",
    "Motion",
    "Fever",
    "Skyline",
    "Echo",
    "Garden",
    "Circles",
    "Letters",
    "Stars",
    "Weather",
    "Avenue",
    "Dreams",
)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _format_for(suffix: str) -> str:
    fmt = _FORMATS.get(suffix.lower().lstrip("."))
    if fmt is None:
        raise ParameterError(f"audio format {suffix!r} is not supported; use one of {', '.join(_FORMATS)}")
    return fmt


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    combos = [f"{a} {b}" for a in _NAME_A for b in _NAME_B if a != b]
    order = rng.permutation(len(combos))
    names = [combos[i] for i in order[: min(n, len(combos))]]
    names += [f"{combos[order[i % len(combos)]]} {i // len(combos) + 1}" for i in range(len(names), n)]
    return names


def generate_catalogue(
    out_dir: Path,
    *,
    n_artists_per_style: int = 6,
    songs_per_artist: int = 4,
    duration: float = 12.0,
    sample_rate: int = 16000,
    seed: int = 0,
    audio_format: str = "mp3",
) -> list[SongSpec]:
    """Write the demo catalogue: audio files, ``catalogue.csv`` and ``truth.csv``.

    Each artist plays one style; each song draws its appeal from Beta(2, 2) plus a small
    per-artist offset. Track ids are shuffled so that their order gives nothing away.

    Args:
        out_dir: Folder to write into (created if missing).
        n_artists_per_style: Artists per style.
        songs_per_artist: Songs per artist.
        duration: Length of every song in seconds.
        sample_rate: Samples per second of the written files.
        seed: Seeds everything: names, artists, songs and appeal.
        audio_format: ``"mp3"``, ``"ogg"``, ``"wav"`` or ``"flac"``.

    Returns:
        The songs, sorted by track id; ``path`` is absolute below ``out_dir``.

    Raises:
        ParameterError: A count, duration, sample rate or format is invalid.
    """
    fmt = _format_for(audio_format)
    for name, value in (("n_artists_per_style", n_artists_per_style), ("songs_per_artist", songs_per_artist)):
        if int(value) != value or value < 1:
            raise ParameterError(f"{name}={value} must be a positive integer")
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    rng = np.random.default_rng([seed, 101])
    names = _artist_names(rng, len(STYLES) * n_artists_per_style)
    plan = []
    for s, style in enumerate(STYLES):
        for a in range(n_artists_per_style):
            artist = names[s * n_artists_per_style + a]
            artist_seed = int(rng.integers(0, 2**31))
            offset = rng.normal(0.0, 0.06)
            for _ in range(songs_per_artist):
                appeal = round(float(np.clip(rng.beta(2.0, 2.0) + offset, 0.02, 0.98)), 4)
                title = f"{_TITLE_A[rng.integers(len(_TITLE_A))]} {_TITLE_B[rng.integers(len(_TITLE_B))]}"
                plan.append((style, artist, artist_seed, int(rng.integers(0, 2**31)), appeal, title))
    order = rng.permutation(len(plan))
    width = max(4, len(str(len(plan))))
    specs = []
    for number, index in enumerate(order, start=1):
        style, artist, artist_seed, song_seed, appeal, title = plan[index]
        track_id = f"t{number:0{width}d}"
        path = out_dir / "audio" / _slug(artist) / f"{track_id}.{audio_format.lower()}"
        waveform = synthesize_song(
            style, artist_seed=artist_seed, song_seed=song_seed, appeal=appeal, duration=duration, sample_rate=sample_rate
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, waveform, sample_rate, format=fmt)
        specs.append(SongSpec(track_id, style, artist, title, path, appeal, float(duration)))
    specs.sort(key=lambda spec: spec.track_id)
    pd.DataFrame(
        {
            "track_id": [s.track_id for s in specs],
            "path": [s.path.relative_to(out_dir).as_posix() for s in specs],
            "artist": [s.artist for s in specs],
            "title": [s.title for s in specs],
            "duration": [s.duration for s in specs],
        }
    ).to_csv(out_dir / "catalogue.csv", index=False)
    pd.DataFrame(
        {
            "track_id": [s.track_id for s in specs],
            "style": [s.style for s in specs],
            "appeal": [s.appeal for s in specs],
        }
    ).to_csv(out_dir / "truth.csv", index=False)
    logger.info("wrote %d demo songs to %s in %.1f s", len(specs), out_dir, time.perf_counter() - started)
    return specs


def generate_song_file(
    path: Path, style: str, *, seed: int, duration: float = 12.0, sample_rate: int = 16000, appeal: float = 0.5
) -> Path:
    """Write one song by a brand-new artist, for "predict a song nobody has heard".

    The artist seed is drawn from a range the catalogue never uses, so the artist is
    new to any model trained on the catalogue.

    Args:
        path: Output file; its suffix (``.mp3``, ``.ogg``, ``.wav``, ``.flac``) sets the format.
        style: One of :data:`STYLES`.
        seed: Seeds the new artist and the song.
        duration: Length in seconds.
        sample_rate: Samples per second.
        appeal: Latent appeal in [0, 1].

    Returns:
        ``path``.

    Raises:
        ParameterError: Unknown style or format, or an out-of-range argument.
    """
    path = Path(path)
    fmt = _format_for(path.suffix)
    rng = np.random.default_rng([seed, 202])
    artist_seed = int(rng.integers(2**31, 2**32))  # catalogue artists draw from [0, 2**31)
    waveform = synthesize_song(
        style,
        artist_seed=artist_seed,
        song_seed=int(rng.integers(0, 2**31)),
        appeal=appeal,
        duration=duration,
        sample_rate=sample_rate,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, waveform, sample_rate, format=fmt)
    return path
