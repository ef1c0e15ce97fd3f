"""Synthetic songs in five styles for encore's demo: oscillators, noise drums, filters.

Every song is built from numpy-vectorised parts: band-limited wavetable saws and
squares, sine and FM tones, noise drums and Butterworth filters
(:func:`scipy.signal.lfilter`). An *artist* (``artist_seed``) fixes the key, tempo, drum
tuning, filter cutoffs and mix levels inside its style; a *song* (``song_seed``) picks
the chord progression, arrangement details and a little tempo drift. The hidden
``appeal`` is audible: it sets the level and brightness of a repeated lead hook and, a
little, the clarity of the mix.

This is demo data only; the rest of encore never reads the style or appeal directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encore.demo import sounds
from encore.exceptions import ParameterError

logger = logging.getLogger(__name__)

__all__ = ["STYLES", "SongSpec", "synthesize_song"]

STYLES: tuple[str, ...] = ("ambient", "electronic", "hiphop", "jazz", "rock")

_TEMPO = {"ambient": (60, 75), "electronic": (120, 130), "hiphop": (85, 95), "jazz": (130, 170), "rock": (110, 140)}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_DORIAN = (0, 2, 3, 5, 7, 9, 10)
_LYDIAN = (0, 2, 4, 6, 7, 9, 11)
_MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
_SCALES = {
    "ambient": (_MAJOR, _LYDIAN),
    "electronic": (_MINOR, _DORIAN),
    "hiphop": (_MINOR, _DORIAN),
    "jazz": (_MAJOR, _DORIAN),
    "rock": (_MAJOR, _MIXOLYDIAN, _MINOR),
}
# Chord progressions as 0-based scale degrees, one chord per harmonic step.
_PROGRESSIONS = {
    "ambient": ((0, 3), (0, 5, 3, 4), (0, 4, 5, 3), (3, 0, 5, 4)),
    "electronic": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 5, 3, 4), (0, 6, 5, 6)),
    "hiphop": ((0, 3), (0, 5), (0, 6, 5, 4), (1, 4)),
    "jazz": ((1, 4, 0, 0), (1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4)),
    "rock": ((0, 4, 5, 3), (0, 3, 4, 3), (0, 6, 3, 0), (5, 3, 0, 4)),
}
_HOOK_RHYTHMS = (
    (1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0),
    (1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0),
    (1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1),
    (1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 0),
)


@dataclass(frozen=True)
class SongSpec:
    """One synthetic song of the demo catalogue.

    ``style`` and ``appeal`` are the hidden truth: only tests and the demo's final sanity
    line may read them; encore itself learns them from listener feedback and audio.

    Attributes:
        track_id: Catalogue id, e.g. ``"t0001"``.
        style: One of :data:`STYLES`.
        artist: Synthetic artist name, e.g. ``"Velvet Static"``; one style per artist.
        title: Song title.
        path: The written audio file.
        appeal: Latent appeal in [0, 1].
        duration: Length in seconds.
    """

    track_id: str
    style: str
    artist: str
    title: str
    path: Path
    appeal: float
    duration: float


@dataclass(frozen=True)
class _Traits:
    """What an artist keeps from song to song."""

    root: int  # tonic as a MIDI note in octave 3 (48-59)
    bpm: float
    scale: tuple[int, ...]
    bright: float  # multiplier on filter cutoffs
    detune: float  # cents
    kick_hz: float
    snare_hz: float
    hat_hz: float
    swing: float  # position of the off-beat inside its pair: 0.5 straight, 0.67 triplet
    drums: float
    bass: float
    harmony: float
    lead_saw: float  # lead timbre: 0 square, 1 saw
    variant: int  # a per-artist arrangement switch inside the style


class _Song:
    """A render buffer plus the song's clock and harmony."""

    def __init__(self, style: str, traits: _Traits, rng: np.random.Generator, duration: float, sample_rate: int):
        self.style, self.traits, self.rng, self.sample_rate = style, traits, rng, sample_rate
        self.n = int(round(duration * sample_rate))
        self.buf = np.zeros(self.n + 3 * sample_rate, dtype=np.float32)
        self.bpm = traits.bpm * rng.uniform(0.98, 1.02)
        self.beat = 60.0 / self.bpm
        self.n_bars = int(np.ceil(duration / (4 * self.beat))) + 1
        progression = _PROGRESSIONS[style][rng.integers(len(_PROGRESSIONS[style]))]
        bars_per_chord = 2 if rng.random() < 0.3 else 1
        self.degrees = [progression[(b // bars_per_chord) % len(progression)] for b in range(self.n_bars)]

    def t(self, bar: int, beat: float) -> float:
        return (bar * 4 + beat) * self.beat

    def chord(self, bar: int, size: int = 3, octave: int = 0) -> list[int]:
        """MIDI notes of the bar's chord stacked in thirds of the scale."""
        degree, scale = self.degrees[bar], self.traits.scale
        notes = []
        for k in range(size):
            d = degree + 2 * k
            notes.append(self.traits.root + 12 * octave + scale[d % 7] + 12 * (d // 7))
        return notes

    def stem(self) -> np.ndarray:
        return np.zeros_like(self.buf)


def _note(
    song: _Song,
    buf: np.ndarray,
    start: float,
    length: float,
    midi: float,
    *,
    wave: str = "saw",
    gain: float = 1.0,
    attack: float = 0.005,
    decay: float = 0.3,
    sustain: float = 0.5,
    release: float = 0.05,
    detune: float = 0.0,
    vibrato: float = 0.0,
) -> None:
    sample_rate = song.sample_rate
    n_hold, n_total = int(length * sample_rate), int((length + release) * sample_rate)
    if n_total <= 0:
        return
    tone = sounds.oscillator(float(sounds.midi_hz(midi)), n_total, sample_rate, wave, song.rng.random(), vibrato)
    if detune:
        tone = 0.5 * (
            tone
            + sounds.oscillator(
                float(sounds.midi_hz(midi + detune / 100.0)), n_total, sample_rate, wave, song.rng.random(), vibrato
            )
        )
    sounds.mix_in(buf, start, tone * sounds.envelope(n_hold, n_total, sample_rate, attack, decay, sustain), sample_rate, gain)


def _place(song: _Song, buf: np.ndarray, sample: np.ndarray, times: list[float], gains: list[float] | float = 1.0) -> None:
    for when, gain in zip(times, gains if isinstance(gains, list) else [gains] * len(times)):
        sounds.mix_in(buf, when, sample, song.sample_rate, gain)


def _bar_times(song: _Song, beats: list[float]) -> list[float]:
    return [song.t(bar, b) for bar in range(song.n_bars) for b in beats]


def _swung_sixteenths(song: _Song) -> list[float]:
    """Positions in beats of one bar of 16ths, every second one delayed by the swing."""
    return [b + off for b in np.arange(0.0, 4.0, 0.5) for off in (0.0, 0.5 * song.traits.swing)]


# --- styles ------------------------------------------------------------------------------


def _hat(song: _Song, decay: float, length: float) -> np.ndarray:
    return sounds.noise_hit(song.sample_rate, (song.traits.hat_hz, 7900.0), decay, length, song.rng)


def _ambient(song: _Song) -> np.ndarray:
    tr, sample_rate, rng = song.traits, song.sample_rate, song.rng
    pad = song.stem()
    for bar in range(song.n_bars):
        if bar and song.degrees[bar] == song.degrees[bar - 1]:
            continue
        n_held = next((k for k in range(1, song.n_bars - bar) if song.degrees[bar + k] != song.degrees[bar]), song.n_bars - bar)
        chord = song.chord(bar, size=4 if tr.variant else 3)
        attack = round(rng.uniform(0.8, 1.6), 1)
        for midi in chord + [chord[0] - 12]:
            _note(
                song,
                pad,
                song.t(bar, 0),
                n_held * 4 * song.beat,
                midi,
                wave="saw" if tr.variant != 2 else "sine",
                gain=0.3,
                attack=attack,
                decay=2.0,
                sustain=0.8,
                release=1.5,
                detune=tr.detune,
            )
    pad = sounds.butter_filter(pad, 900.0 * tr.bright, sample_rate)
    t = np.arange(len(pad)) / sample_rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(5.0, 9.0) + rng.uniform(0, 6.3))
    bed = sounds.butter_filter(rng.standard_normal(len(pad)), (200.0, 1800.0 * tr.bright), sample_rate, "band") * swell
    return tr.harmony * pad + 0.05 * tr.drums * bed.astype(np.float32)


def _electronic(song: _Song) -> np.ndarray:
    tr, sample_rate, rng = song.traits, song.sample_rate, song.rng
    drums, synths = song.stem(), song.stem()
    _place(song, drums, sounds.kick(sample_rate, tr.kick_hz, 0.22, rng), _bar_times(song, [0, 1, 2, 3]))
    _place(song, drums, _hat(song, 0.14, 0.3), _bar_times(song, [0.5, 1.5, 2.5, 3.5]), 0.7)  # open, off-beat
    if tr.variant:  # clap on 2 and 4
        _place(song, drums, sounds.noise_hit(sample_rate, (1200.0, 4000.0), 0.08, 0.25, rng), _bar_times(song, [1, 3]), 0.8)
    if rng.random() < 0.6:
        _place(song, drums, _hat(song, 0.025, 0.08), _bar_times(song, [k / 4 for k in range(16)]), 0.25)
    wave = "saw" if tr.variant != 1 else "square"
    octave_jump = rng.random() < 0.5
    stabs = [0.5, 1.5, 2.5, 3.5] if rng.random() < 0.5 else [0.75, 1.5, 2.75, 3.5]
    for bar in range(song.n_bars):
        root = song.chord(bar)[0] - 12
        for k in range(8):
            midi = root + (12 if octave_jump and k % 2 else 0)
            _note(
                song, synths, song.t(bar, k / 2), 0.36 * song.beat, midi, wave=wave, gain=0.5 * tr.bass, decay=0.12, sustain=0.3
            )
        for b in stabs:
            for midi in song.chord(bar, octave=1):
                _note(song, synths, song.t(bar, b), 0.1, midi, gain=0.18 * tr.harmony, decay=0.06, sustain=0.2, detune=tr.detune)
    synths = sounds.butter_filter(synths, 1400.0 * tr.bright, sample_rate)
    since_beat = (np.arange(len(synths)) / sample_rate) % song.beat
    pump = 1.0 - 0.6 * np.exp(-since_beat / 0.07)  # side-chained to the kick
    return tr.drums * drums + synths * pump.astype(np.float32)


def _hiphop(song: _Song) -> np.ndarray:
    tr, sample_rate, rng = song.traits, song.sample_rate, song.rng
    drums, keys, sub = song.stem(), song.stem(), song.stem()
    kicks = [0, 1.5] + ([2.75] if rng.random() < 0.5 else []) + ([3.5] if tr.variant else [])
    _place(song, drums, sounds.kick(sample_rate, tr.kick_hz, 0.3, rng), _bar_times(song, kicks))
    _place(song, drums, sounds.snare(sample_rate, tr.snare_hz, 0.16, 0.8 * tr.bright, rng), _bar_times(song, [1, 3]))
    hat_times = _bar_times(song, _swung_sixteenths(song))
    _place(song, drums, _hat(song, 0.03, 0.1), hat_times, list(rng.uniform(0.15, 0.45, len(hat_times))))
    for bar in range(song.n_bars):
        root = song.chord(bar)[0] - 24
        for b in kicks:
            _note(
                song,
                sub,
                song.t(bar, b),
                0.7 * song.beat,
                root,
                wave="sine",
                gain=0.9 * tr.bass,
                decay=0.6,
                sustain=0.6,
                release=0.08,
            )
        for b in [0, 2.5] if rng.random() < 0.6 else [0]:
            for midi in song.chord(bar, size=4):
                _keys(song, keys, "rhodes", song.t(bar, b), 1.2 * song.beat, midi, 0.2 * tr.harmony)
    keys = sounds.butter_filter(keys, 1800.0 * tr.bright, sample_rate)
    n_clicks = int(8 * len(keys) / sample_rate)
    crackle = np.zeros(len(keys), dtype=np.float32)
    crackle[rng.integers(0, len(keys), n_clicks)] = rng.uniform(-1, 1, n_clicks)
    hiss = 0.02 * sounds.butter_filter(rng.standard_normal(len(keys)), 3000.0, sample_rate)
    return tr.drums * drums + sub + keys + 0.3 * sounds.butter_filter(crackle, 2500.0, sample_rate, "high") + hiss


def _keys(song: _Song, buf: np.ndarray, instrument: str, start: float, length: float, midi: int, gain: float) -> None:
    sample_rate = song.sample_rate
    release = {"rhodes": 0.2, "pluck": 0.05}.get(instrument, 0.15)
    n_hold, n_total = int(length * sample_rate), int((length + release) * sample_rate)
    sounds.mix_in(buf, start, sounds.keys_tone(instrument, int(midi), n_hold, n_total, sample_rate), sample_rate, gain)


def _jazz(song: _Song) -> np.ndarray:
    tr, sample_rate, rng = song.traits, song.sample_rate, song.rng
    drums, bass, piano = song.stem(), song.stem(), song.stem()
    sw = tr.swing
    ride = sounds.cymbal(sample_rate, 0.45, rng, ring=tr.kick_hz / 55.0)  # "ding, ding-a ding, ding-a"
    ride_gains = [0.55, 0.65, 0.4, 0.55, 0.65, 0.4] * song.n_bars
    _place(song, drums, ride, _bar_times(song, [0, 1, 1 + sw, 2, 3, 3 + sw]), ride_gains)
    _place(song, drums, sounds.noise_hit(sample_rate, (3000.0, 7800.0), 0.02, 0.06, rng), _bar_times(song, [1, 3]), 0.3)
    brush = sounds.noise_hit(sample_rate, (800.0, 5000.0 * tr.bright), 0.12, 0.3, rng, attack=0.02)
    _place(song, drums, brush, _bar_times(song, [1, 3]), 0.5)
    t = np.arange(len(drums)) / sample_rate
    swish = sounds.butter_filter(rng.standard_normal(len(drums)), (1500.0, 6000.0), sample_rate, "band")
    drums += 0.12 * swish * np.abs(np.sin(np.pi * t / song.beat)).astype(np.float32)
    _place(song, drums, sounds.kick(sample_rate, tr.kick_hz, 0.15, rng), _bar_times(song, [0, 1, 2, 3]), 0.2)
    for bar in range(song.n_bars):
        chord = song.chord(bar, size=4, octave=-1)
        approach = song.chord(min(bar + 1, song.n_bars - 1), octave=-1)[0] + (1 if rng.random() < 0.5 else -1)
        walk = [chord[0], chord[int(rng.integers(1, 3))], chord[int(rng.integers(2, 4))], approach]
        for b, midi in enumerate(walk):
            _keys(song, bass, "pluck", song.t(bar, b), 0.9 * song.beat, midi - 12, 0.8 * tr.bass)
        voicing = song.chord(bar, size=5)[1:]  # rootless 3-5-7-9
        for b in rng.choice([0.0, 1 + sw, 2.0, 2 + sw, 3 + sw], size=2, replace=False):
            for midi in voicing:
                _keys(song, piano, "piano", song.t(bar, float(b)), 0.6 * song.beat, midi, 0.12 * tr.harmony)
    return (
        tr.drums * drums
        + sounds.butter_filter(bass, 900.0, sample_rate)
        + sounds.butter_filter(piano, 3500.0 * tr.bright, sample_rate)
    )


def _rock(song: _Song) -> np.ndarray:
    tr, sample_rate, rng = song.traits, song.sample_rate, song.rng
    drums, guitar, bass = song.stem(), song.stem(), song.stem()
    kicks = [0, 2] + ([2.5] if rng.random() < 0.5 else [])
    snare = sounds.snare(sample_rate, tr.snare_hz, 0.2, tr.bright, rng)
    _place(song, drums, sounds.kick(sample_rate, tr.kick_hz, 0.2, rng), _bar_times(song, kicks))
    _place(song, drums, snare, _bar_times(song, [1, 3]), 1.5)
    _place(song, drums, _hat(song, 0.04, 0.12), _bar_times(song, [k / 2 for k in range(8)]), 0.35)
    _place(song, drums, sounds.cymbal(sample_rate, 0.9, rng), [song.t(bar, 0) for bar in range(0, song.n_bars, 4)], 0.8)
    chug = rng.random() < 0.5
    for bar in range(song.n_bars):
        root = song.chord(bar)[0] - 12
        for midi in (root, root + 7, root + 12):  # power chord
            if chug:
                for k in range(8):
                    _note(
                        song,
                        guitar,
                        song.t(bar, k / 2),
                        0.45 * song.beat,
                        midi,
                        gain=0.4,
                        decay=0.2,
                        sustain=0.5,
                        detune=tr.detune,
                    )
            else:
                _note(
                    song, guitar, song.t(bar, 0), 4 * song.beat - 0.05, midi, gain=0.4, decay=1.0, sustain=0.7, detune=tr.detune
                )
        for k in range(8):
            _note(song, bass, song.t(bar, k / 2), 0.45 * song.beat, root - 12, gain=0.7 * tr.bass, decay=0.25, sustain=0.5)
        if bar % 4 == 3:  # a snare fill ends each phrase
            _place(song, drums, snare[: int(0.15 * sample_rate)], [song.t(bar, 3 + k / 4) for k in range(4)], 0.7)
    drive = 4.0 + 6.0 * rng.random()
    guitar = sounds.butter_filter(
        np.tanh(drive * sounds.butter_filter(guitar, 120.0, sample_rate, "high")), 3200.0 * tr.bright, sample_rate
    )
    return tr.drums * drums + 0.35 * tr.harmony * guitar + sounds.butter_filter(bass, 700.0, sample_rate)


_RENDERERS: dict[str, Callable[[_Song], np.ndarray]] = {
    "ambient": _ambient,
    "electronic": _electronic,
    "hiphop": _hiphop,
    "jazz": _jazz,
    "rock": _rock,
}


def _lead(song: _Song, appeal: float) -> np.ndarray:
    """A repeated two-bar pentatonic hook; its level and brightness follow ``appeal``."""
    tr, rng = song.traits, song.rng
    lead = song.stem()
    pent = (0, 2, 4, 7, 9) if tr.scale[2] == 4 else (0, 3, 5, 7, 10)
    pitches = [tr.root + 24 + 12 * (d // 5) + pent[d % 5] for d in range(-2, 8)]
    rhythm = _HOOK_RHYTHMS[rng.integers(len(_HOOK_RHYTHMS))]
    steps = np.clip(np.cumsum(rng.choice([-2, -1, 1, 2], size=16)) + 4, 0, len(pitches) - 1)
    steps[8:12] = steps[:4]  # the answer starts like the call
    wave = "saw" if tr.lead_saw > 0.5 else "square"
    for bar in range(0, song.n_bars, 2):
        for k, on in enumerate(rhythm):
            if on:
                length = 0.5 * song.beat * (2 if k + 1 < 16 and not rhythm[k + 1] else 1) * 0.9
                _note(
                    song,
                    lead,
                    song.t(bar, k / 2),
                    length,
                    pitches[steps[k]],
                    wave=wave,
                    attack=0.01,
                    decay=0.2,
                    sustain=0.7,
                    release=0.06,
                    vibrato=0.004,
                )
    lead = sounds.butter_filter(lead, 1500.0 + 5000.0 * appeal, song.sample_rate)
    delay = int(0.75 * song.beat * song.sample_rate)
    lead[delay:] += 0.3 * lead[:-delay]
    return lead


def _check_song_args(style: str, appeal: float, duration: float, sample_rate: int) -> None:
    if style not in STYLES:
        raise ParameterError(f"style={style!r} is not a demo style; use one of {', '.join(STYLES)}")
    if not 0.0 <= appeal <= 1.0:
        raise ParameterError(f"appeal={appeal} must lie in [0, 1]")
    if sample_rate < 8000:
        raise ParameterError(f"sample_rate={sample_rate} is too low for the demo synth; use at least 8000 Hz")
    if not duration * sample_rate >= 1:
        raise ParameterError(f"duration={duration} must be a positive number of seconds")


def _artist_traits(style: str, artist_seed: int) -> _Traits:
    rng = np.random.default_rng([artist_seed, STYLES.index(style), 17])
    lo, hi = _TEMPO[style]
    scales = _SCALES[style]
    return _Traits(
        root=48 + int(rng.integers(12)),
        bpm=float(rng.uniform(lo + 1, hi - 1)),
        scale=scales[rng.integers(len(scales))],
        bright=float(rng.uniform(0.7, 1.4)),
        detune=float(rng.uniform(5.0, 18.0)),
        kick_hz=float(rng.uniform(45.0, 65.0)),
        snare_hz=float(rng.uniform(160.0, 240.0)),
        hat_hz=float(rng.uniform(5000.0, 7000.0)),
        swing=float(rng.uniform(0.6, 0.67) if style in ("jazz", "hiphop") else 0.5),
        drums=float(rng.uniform(0.75, 1.25)),
        bass=float(rng.uniform(0.75, 1.25)),
        harmony=float(rng.uniform(0.75, 1.25)),
        lead_saw=float(rng.random()),
        variant=int(rng.integers(3)),
    )


def synthesize_song(
    style: str, *, artist_seed: int, song_seed: int, appeal: float, duration: float, sample_rate: int
) -> np.ndarray:
    """Render one synthetic song.

    Args:
        style: One of :data:`STYLES`.
        artist_seed: Fixes the artist's key, tempo, timbres and mix levels.
        song_seed: Fixes the song's progression, arrangement and tempo drift.
        appeal: Latent appeal in [0, 1]: 0 gives no lead line, 1 a loud, bright hook.
        duration: Length in seconds.
        sample_rate: Samples per second (at least 8000).

    Returns:
        Mono float32 waveform of shape ``(round(duration * sample_rate),)``, peak <= 0.99.

    Raises:
        ParameterError: An unknown style or an out-of-range argument.

    Example:
        >>> waveform = synthesize_song("jazz", artist_seed=1, song_seed=2, appeal=0.8,
        ...                            duration=4.0, sample_rate=16000)
        >>> waveform.shape
        (64000,)
    """
    _check_song_args(style, appeal, duration, sample_rate)
    traits = _artist_traits(style, artist_seed)
    rng = np.random.default_rng([artist_seed, song_seed, STYLES.index(style), 29])
    song = _Song(style, traits, rng, duration, sample_rate)
    backing = _RENDERERS[style](song)
    muddy = 0.25 * (1.0 - appeal)  # low appeal: a duller, less clear mix
    backing = (1.0 - muddy) * backing + muddy * sounds.butter_filter(backing, 1200.0, sample_rate)
    backing_rms = float(np.sqrt(np.mean(backing[: song.n] ** 2))) + 1e-9
    amount = float(np.clip((appeal - 0.08) / 0.92, 0.0, 1.0)) ** 1.3
    if amount > 0:
        lead = _lead(song, appeal)
        lead_rms = float(np.sqrt(np.mean(lead[: song.n] ** 2))) + 1e-9
        backing = backing + (0.9 * amount * backing_rms / lead_rms) * lead
    waveform = backing[: song.n].astype(np.float64)
    fade = min(song.n, int(0.02 * sample_rate))
    waveform[:fade] *= np.linspace(0.0, 1.0, fade)
    waveform[len(waveform) - fade :] *= np.linspace(1.0, 0.0, fade)
    target_rms = 0.1 * 10 ** (rng.uniform(-2.5, 2.5) / 20.0)
    waveform *= target_rms / (np.sqrt(np.mean(waveform**2)) + 1e-9)
    return _limit(waveform).astype(np.float32)


def _limit(x: np.ndarray, knee: float = 0.7, ceiling: float = 0.99) -> np.ndarray:
    """Soft limiter: linear below ``knee``, tanh into ``ceiling`` above it."""
    mag = np.abs(x)
    over = mag > knee
    room = ceiling - knee
    x[over] = np.sign(x[over]) * (knee + room * np.tanh((mag[over] - knee) / room))
    return x
