"""Listener feedback for the demo catalogue, generated the way real listeners give it.

Each simulated listener has a reliability (most tag the right style, a few tag a random
wrong one), a heavy-tailed activity level, a taste bias and mild style preferences. For
every song they hear they leave plays (complete ones for songs they enjoy, early skips
for songs they do not), sometimes a like or dislike, sometimes a star rating, and, if
they are taggers, free-text tags with the spelling noise real tags have: case, spaces,
variants that need :data:`TAG_SYNONYMS`, descriptive tags and personal tags such as
``"seen live"`` that a stop list should drop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from encore.demo.synth_audio import STYLES, SongSpec
from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = ["FEEDBACK_COLUMNS", "PERSONAL_TAGS", "TAG_SYNONYMS", "simulate_feedback"]

FEEDBACK_COLUMNS: tuple[str, ...] = ("track_id", "listener_id", "kind", "value", "timestamp", "source")

#: Spelling variants to canonical tags, keyed by the lower-cased, space-collapsed form.
TAG_SYNONYMS: dict[str, str] = {
    "hip hop": "hiphop",
    "hip-hop": "hiphop",
    "electronica": "electronic",
    "electro": "electronic",
    "ambience": "ambient",
    "synths": "synth",
    "guitars": "guitar",
}

#: Tags about the listener rather than the song; a stop list should drop them.
PERSONAL_TAGS: tuple[str, ...] = ("favorites", "seen live", "my playlist", "love it", "albums i own")

# How listeners spell each style before case and spacing noise (synonym variants included).
_STYLE_SPELLINGS = {
    "ambient": ("ambient", "ambient", "ambient", "ambience"),
    "electronic": ("electronic", "electronic", "electronica", "electro"),
    "hiphop": ("hip hop", "hip-hop", "hiphop", "hip hop"),
    "jazz": ("jazz",),
    "rock": ("rock",),
}
_DESCRIPTORS = {
    "ambient": ("chill", "relaxing", "atmospheric", "calm", "instrumental", "dreamy"),
    "electronic": ("danceable", "upbeat", "energetic", "synth", "synths", "club"),
    "hiphop": ("groovy", "chill", "beats", "laid back", "dark", "lofi"),
    "jazz": ("smooth", "instrumental", "groovy", "piano", "relaxing", "swing"),
    "rock": ("energetic", "guitar", "guitars", "loud", "upbeat", "heavy"),
}
_SPAN_S = 30 * 24 * 3600.0  # feedback is spread over 30 days


def _spell(tag: str, habit: int, rng: np.random.Generator) -> str:
    """Apply a listener's case habit, plus occasional stray spaces."""
    if habit == 3:
        habit = int(rng.integers(3))
    if habit == 1:
        tag = tag.title()
    elif habit == 2:
        tag = tag.upper()
    roll = rng.random()
    if roll < 0.06:
        tag = f" {tag} "
    elif roll < 0.12:
        tag = f"{tag} "
    return tag


def _play_ms(enjoy: float, duration_ms: float, rng: np.random.Generator) -> int:
    """Milliseconds listened: complete, an early skip (< 30 % and < 30 s), or partial."""
    roll = rng.random()
    if roll < 0.1 + 0.85 * enjoy:
        ms = duration_ms
    elif rng.random() < 0.75:
        ms = min(rng.uniform(0.06, 0.28) * duration_ms, rng.uniform(2000.0, 29000.0))
    else:
        ms = rng.uniform(0.3, 0.95) * duration_ms
    return max(1, int(round(ms)))


def _listener_events(
    songs: list[SongSpec], rng: np.random.Generator, popularity: np.ndarray, style_index: np.ndarray
) -> list[tuple[float, str, str, str]]:
    """All events of one listener as ``(seconds after start, track_id, kind, value)``."""
    reliability = rng.beta(30.0, 2.0) if rng.random() < 0.8 else rng.beta(4.0, 5.0)
    bias = rng.normal(0.0, 0.7)
    prefs = rng.normal(0.0, 0.5, len(STYLES))
    n_heard = int(np.clip(round(rng.lognormal(np.log(25.0), 0.8)), 3, len(songs)))
    weights = popularity * np.exp(prefs[style_index])
    heard = rng.choice(len(songs), size=n_heard, replace=False, p=weights / weights.sum())
    tag_rate = rng.beta(4.0, 2.0) if rng.random() < 0.75 else 0.0
    click_rate = rng.beta(3.0, 2.0)
    rates_songs = rng.random() < 0.3
    habit = int(rng.choice(4, p=[0.5, 0.3, 0.05, 0.15]))
    events: list[tuple[float, str, str, str]] = []
    for j in heard:
        song = songs[j]
        tid = song.track_id
        taste = 6.0 * (song.appeal - 0.5) + bias + 0.5 * prefs[style_index[j]] + rng.normal(0.0, 0.6)
        enjoy = 1.0 / (1.0 + np.exp(-taste))  # how much this listener likes this song
        t = rng.uniform(0.0, _SPAN_S)
        first = t
        for _ in range(1 + rng.poisson(1.5 * enjoy)):
            ms = _play_ms(enjoy, song.duration * 1000.0, rng)
            events.append((t, tid, "play", str(ms)))
            t += ms / 1000.0 + rng.exponential(86400.0)
        roll = rng.random()
        if roll < click_rate * enjoy**2:
            events.append((first + rng.uniform(2, 60), tid, "like", ""))
        elif roll < click_rate * (enjoy**2 + 0.6 * (1.0 - enjoy) ** 2):
            events.append((first + rng.uniform(1, 20), tid, "dislike", ""))
        if rates_songs and rng.random() < 0.6:
            stars = int(np.clip(round(1.0 + 4.0 * enjoy + rng.normal(0.0, 0.5)), 1, 5))
            events.append((first + rng.uniform(5, 120), tid, "rating", str(stars)))
        if rng.random() < tag_rate:
            events += [
                (first + rng.uniform(10, 300), tid, "tag", tag) for tag in _song_tags(song.style, reliability, enjoy, habit, rng)
            ]
    return events


def _song_tags(style: str, reliability: float, enjoy: float, habit: int, rng: np.random.Generator) -> list[str]:
    """One listener's tags for one song: its style as they heard it, descriptors, maybe a personal tag."""
    heard_as = style
    if rng.random() > reliability:
        heard_as = STYLES[rng.choice([i for i, s in enumerate(STYLES) if s != style])]
    tags = []
    if rng.random() < 0.9:
        spellings = _STYLE_SPELLINGS[heard_as]
        tags.append(spellings[rng.integers(len(spellings))])
    descriptors = _DESCRIPTORS[heard_as]
    n_desc = int(rng.choice(3, p=[0.35, 0.45, 0.2]))
    tags += [descriptors[i] for i in rng.choice(len(descriptors), size=n_desc, replace=False)]
    if rng.random() < 0.1 + 0.2 * enjoy:
        loved = enjoy > 0.6 and rng.random() < 0.5
        tags.append("love it" if loved else PERSONAL_TAGS[rng.integers(len(PERSONAL_TAGS))])
    return list(dict.fromkeys(_spell(tag, habit, rng) for tag in tags))


def simulate_feedback(
    songs: Sequence[SongSpec],
    *,
    n_listeners: int = 80,
    seed: int = 0,
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    n_bad_rows: int = 0,
) -> pd.DataFrame:
    """Simulate listener feedback events for the demo catalogue.

    With the default catalogue (120 songs) and 80 listeners this gives roughly 10,000
    events, with about ten distinct tagging listeners per song.

    Args:
        songs: The catalogue, e.g. from :func:`encore.demo.synth.generate_catalogue`;
            the hidden ``style`` and ``appeal`` drive the listeners.
        n_listeners: Number of simulated listeners.
        seed: Makes the result deterministic.
        start: Start of the 30-day feedback window; a naive datetime is taken as UTC.
        n_bad_rows: Malformed rows appended at the end (unknown track ``t9999``, rating
            ``"7"``, timestamp ``"not-a-date"``, kind ``"clap"``, in turn), for an
            importer's quarantine. They are the only malformed rows.

    Returns:
        String columns ``track_id, listener_id, kind, value, timestamp, source``, sorted by
        time; ``kind`` is ``tag``, ``like``, ``dislike``, ``play`` or ``rating``; ``value``
        is the tag text, ``""``, milliseconds listened, or stars ``"1"``..``"5"``;
        ``timestamp`` is ISO 8601 UTC (``2026-01-03T14:22:05Z``); ``source`` is ``"demo"``.

    Raises:
        ParameterError: No songs, a song with an unknown style, or a bad count.
    """
    songs = list(songs)
    if not songs:
        raise ParameterError("songs is empty; pass the catalogue from generate_catalogue")
    if n_listeners < 1:
        raise ParameterError(f"n_listeners={n_listeners} must be at least 1")
    if n_bad_rows < 0:
        raise ParameterError(f"n_bad_rows={n_bad_rows} must be zero or more")
    unknown_styles = sorted({song.style for song in songs} - set(STYLES))
    if unknown_styles:
        raise ParameterError(f"songs have unknown styles {unknown_styles}; use only {', '.join(STYLES)}")
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)
    rng = np.random.default_rng([seed, 303])
    appeal = np.array([song.appeal for song in songs])
    style_index = np.array([STYLES.index(song.style) for song in songs])
    popularity = 0.6 + appeal
    width = max(3, len(str(n_listeners)))
    rows = []
    for number in range(1, n_listeners + 1):
        listener_id = f"u{number:0{width}d}"
        rows += [
            (t, tid, listener_id, kind, value) for t, tid, kind, value in _listener_events(songs, rng, popularity, style_index)
        ]
    rows.sort(key=lambda row: row[0])

    def stamp(seconds: float) -> str:
        return (start + timedelta(seconds=float(seconds))).strftime("%Y-%m-%dT%H:%M:%SZ")

    records = [(tid, lid, kind, value, stamp(t), "demo") for t, tid, lid, kind, value in rows]
    known = {song.track_id for song in songs}
    unknown = next(f"t{k}" for k in range(9999, 10**9) if f"t{k}" not in known)
    for i in range(n_bad_rows):
        tid, lid = songs[i % len(songs)].track_id, f"u{i % n_listeners + 1:0{width}d}"
        when = stamp((rows[-1][0] if rows else 0.0) + 60.0 * (i + 1))
        records.append(
            [
                (unknown, lid, "play", "5000", when, "demo"),
                (tid, lid, "rating", "7", when, "demo"),
                (tid, lid, "like", "", "not-a-date", "demo"),
                (tid, lid, "clap", "", when, "demo"),
            ][i % 4]
        )
    frame = pd.DataFrame.from_records(records, columns=list(FEEDBACK_COLUMNS)).astype(str)
    logger.info(
        "simulated %d feedback events from %d listeners on %d songs (+%d bad rows)",
        len(frame) - n_bad_rows,
        n_listeners,
        len(songs),
        n_bad_rows,
    )
    return frame
