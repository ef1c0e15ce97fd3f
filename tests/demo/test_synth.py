"""The demo's synthetic catalogue: audio that sounds like styles, feedback like real listeners'."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from encore.demo.synth import (
    PERSONAL_TAGS,
    STYLES,
    TAG_SYNONYMS,
    SongSpec,
    generate_catalogue,
    generate_song_file,
    simulate_feedback,
    synthesize_song,
)
from encore.exceptions import ParameterError

SAMPLE_RATE = 16000
DURATION = 6.0
ARTISTS_PER_STYLE = 3
SONGS_PER_ARTIST = 2
KINDS = {"tag", "like", "dislike", "play", "rating"}
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SongSpec]]:
    out_dir = tmp_path_factory.mktemp("demo-catalogue")
    specs = generate_catalogue(
        out_dir,
        n_artists_per_style=ARTISTS_PER_STYLE,
        songs_per_artist=SONGS_PER_ARTIST,
        duration=DURATION,
        sample_rate=SAMPLE_RATE,
        seed=3,
    )
    return out_dir, specs


@pytest.fixture(scope="module")
def feedback(catalogue: tuple[Path, list[SongSpec]]) -> pd.DataFrame:
    return simulate_feedback(catalogue[1], n_listeners=60, seed=5)


def _normalise_tag(tag: str) -> str:
    tag = " ".join(tag.lower().split())
    return TAG_SYNONYMS.get(tag, tag)


def _style_features(waveform: np.ndarray) -> np.ndarray:
    """MFCC means, log spectral centroid and onset-strength statistics."""
    power = np.abs(librosa.stft(waveform, n_fft=1024, hop_length=512)) ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_mels=40))
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    centroid = librosa.feature.spectral_centroid(S=np.sqrt(power), sr=SAMPLE_RATE)
    onset = librosa.onset.onset_strength(S=mel_db, sr=SAMPLE_RATE)
    return np.r_[mfcc.mean(axis=1), np.log(centroid.mean()), onset.mean(), onset.std()]


def _lead_band_ratio(waveform: np.ndarray) -> float:
    """Share of the energy between 600 and 3000 Hz, where the lead hook lives."""
    power = np.abs(librosa.stft(waveform, n_fft=1024, hop_length=512)) ** 2
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=1024)
    band = (freqs > 600) & (freqs < 3000)
    return float(power[band].sum() / power.sum())


def _malformed(row: pd.Series, known: set[str]) -> bool:
    if row.track_id not in known or row.kind not in KINDS or not STAMP.match(row.timestamp):
        return True
    if row.kind == "rating":
        return row.value not in {"1", "2", "3", "4", "5"}
    if row.kind == "play":
        return not (row.value.isdigit() and int(row.value) > 0)
    if row.kind == "tag":
        return not row.value.strip()
    return row.value != ""


# --- audio -------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_synthesize_song_shape_dtype_and_peak(style: str) -> None:
    waveform = synthesize_song(style, artist_seed=1, song_seed=2, appeal=0.9, duration=2.5, sample_rate=SAMPLE_RATE)
    assert waveform.shape == (round(2.5 * SAMPLE_RATE),)
    assert waveform.dtype == np.float32
    assert np.isfinite(waveform).all()
    assert np.abs(waveform).max() <= 0.99
    assert np.sqrt(np.mean(waveform**2)) > 0.03  # not silent


def test_synthesize_song_is_deterministic_under_seeds() -> None:
    kwargs = dict(appeal=0.4, duration=1.5, sample_rate=SAMPLE_RATE)
    first = synthesize_song("jazz", artist_seed=7, song_seed=1, **kwargs)
    np.testing.assert_array_equal(first, synthesize_song("jazz", artist_seed=7, song_seed=1, **kwargs))
    assert not np.allclose(first, synthesize_song("jazz", artist_seed=7, song_seed=2, **kwargs))
    assert not np.allclose(first, synthesize_song("jazz", artist_seed=8, song_seed=1, **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(style="polka"), "style='polka'"),
        (dict(appeal=1.5), "appeal=1.5"),
        (dict(duration=0.0), "duration=0.0"),
        (dict(sample_rate=4000), "sample_rate=4000"),
    ],
)
def test_synthesize_song_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = dict(style="rock", artist_seed=0, song_seed=0, appeal=0.5, duration=1.0, sample_rate=SAMPLE_RATE) | kwargs
    with pytest.raises(ParameterError, match=re.escape(match)):
        synthesize_song(args.pop("style"), **args)


def test_catalogue_files_tables_and_truth(catalogue: tuple[Path, list[SongSpec]]) -> None:
    out_dir, specs = catalogue
    assert len(specs) == len(STYLES) * ARTISTS_PER_STYLE * SONGS_PER_ARTIST
    table = pd.read_csv(out_dir / "catalogue.csv", dtype=str)
    assert list(table.columns) == ["track_id", "path", "artist", "title", "duration"]
    assert "style" not in "".join(table.columns) and "appeal" not in "".join(table.columns)
    assert table.track_id.is_unique and list(table.track_id) == [s.track_id for s in specs]
    truth = pd.read_csv(out_dir / "truth.csv", dtype={"track_id": str})
    assert list(truth.columns) == ["track_id", "style", "appeal"]
    assert truth.set_index("track_id")["style"].to_dict() == {s.track_id: s.style for s in specs}
    assert truth.appeal.between(0, 1).all() and truth.appeal.std() > 0.1
    by_artist = truth.assign(artist=table.artist).groupby("artist")["style"].nunique()
    assert (by_artist == 1).all() and len(by_artist) == len(STYLES) * ARTISTS_PER_STYLE
    for spec, relative in zip(specs, table.path):
        assert (out_dir / relative).resolve() == spec.path and spec.path.suffix == ".mp3"
        info = sf.info(spec.path)
        assert info.samplerate == SAMPLE_RATE and info.channels == 1
        waveform, _ = sf.read(spec.path, dtype="float32")
        assert abs(len(waveform) / SAMPLE_RATE - DURATION) <= 0.1


def test_catalogue_is_deterministic_under_seed(tmp_path: Path) -> None:
    def make(folder: str, seed: int) -> list[SongSpec]:
        return generate_catalogue(
            tmp_path / folder, n_artists_per_style=1, songs_per_artist=1, duration=0.5, seed=seed, audio_format="wav"
        )

    first, again, other = make("a", 0), make("b", 0), make("c", 1)
    strip = [(s.track_id, s.style, s.artist, s.title, s.appeal) for s in first]
    assert strip == [(s.track_id, s.style, s.artist, s.title, s.appeal) for s in again]
    assert strip != [(s.track_id, s.style, s.artist, s.title, s.appeal) for s in other]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(sf.read(a.path)[0], sf.read(b.path)[0])


def test_catalogue_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="'aiff'"):
        generate_catalogue(tmp_path, n_artists_per_style=1, songs_per_artist=1, duration=0.5, audio_format="aiff")


def test_generate_song_file_writes_a_new_song(tmp_path: Path) -> None:
    path = generate_song_file(tmp_path / "new" / "song.ogg", "hiphop", seed=4, duration=2.0)
    waveform, sample_rate = sf.read(path)
    assert sample_rate == SAMPLE_RATE and abs(len(waveform) / sample_rate - 2.0) <= 0.1
    with pytest.raises(ParameterError, match="'.aiff'"):
        generate_song_file(tmp_path / "song.aiff", "rock", seed=4)


def test_styles_are_separable_across_artists(catalogue: tuple[Path, list[SongSpec]]) -> None:
    _, specs = catalogue
    features = np.stack([_style_features(sf.read(s.path, dtype="float32")[0]) for s in specs])
    styles = np.array([s.style for s in specs])
    artists = sorted({s.artist for s in specs})
    # Fold k holds out the k-th artist of every style: the classifier never hears them.
    rank = {
        a: sorted(x.artist for x in specs if x.style == style).index(a) // SONGS_PER_ARTIST
        for style in STYLES
        for a in {x.artist for x in specs if x.style == style}
    }
    fold = np.array([rank[s.artist] for s in specs])
    assert len(artists) == len(STYLES) * ARTISTS_PER_STYLE
    correct = 0
    for k in range(ARTISTS_PER_STYLE):
        test = fold == k
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(features[~test], styles[~test])
        correct += int((model.predict(features[test]) == styles[test]).sum())
    assert correct / len(specs) >= 0.8


@pytest.mark.parametrize("style", STYLES)
def test_appeal_is_audible(style: str) -> None:
    appeals = np.linspace(0.0, 1.0, 8)
    ratios = [
        _lead_band_ratio(
            synthesize_song(style, artist_seed=100 + i, song_seed=i, appeal=float(a), duration=3.0, sample_rate=SAMPLE_RATE)
        )
        for i, a in enumerate(appeals)
    ]
    assert spearmanr(ratios, appeals).statistic >= 0.5
    # The same song with and without its hook: the lead, not only the clearer mix, is heard.
    for i in range(2):
        with_hook, without = (
            _lead_band_ratio(
                synthesize_song(style, artist_seed=100 + i, song_seed=i, appeal=a, duration=3.0, sample_rate=SAMPLE_RATE)
            )
            for a in (1.0, 0.0)
        )
        assert with_hook >= 2.0 * without


# --- feedback ----------------------------------------------------------------------------


def test_feedback_schema(feedback: pd.DataFrame, catalogue: tuple[Path, list[SongSpec]]) -> None:
    assert list(feedback.columns) == ["track_id", "listener_id", "kind", "value", "timestamp", "source"]
    assert all(feedback[c].map(type).eq(str).all() for c in feedback.columns)
    assert set(feedback.kind) == KINDS
    assert (feedback.source == "demo").all()
    known = {s.track_id for s in catalogue[1]}
    assert not feedback.apply(_malformed, axis=1, known=known).any()
    stamps = pd.to_datetime(feedback.timestamp, format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    assert stamps.is_monotonic_increasing and stamps.min() >= pd.Timestamp("2026-01-01", tz="UTC")


def test_feedback_is_deterministic_under_seed(catalogue: tuple[Path, list[SongSpec]], feedback: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(feedback, simulate_feedback(catalogue[1], n_listeners=60, seed=5))
    assert not feedback.equals(simulate_feedback(catalogue[1], n_listeners=60, seed=6))


def test_style_tag_majority_recovers_style(feedback: pd.DataFrame, catalogue: tuple[Path, list[SongSpec]]) -> None:
    tags = feedback[feedback.kind == "tag"].assign(tag=lambda d: d.value.map(_normalise_tag))
    raw_variants = set(tags.value[tags.tag == "hiphop"])
    assert len(raw_variants) >= 3  # spelling noise that needs normalising and synonyms
    votes = tags[tags.tag.isin(STYLES)].groupby("track_id").tag.agg(lambda s: s.value_counts().index[0])
    truth = {s.track_id: s.style for s in catalogue[1]}
    hits = sum(votes.get(tid) == style for tid, style in truth.items())
    assert hits / len(truth) >= 0.9


def test_like_rate_follows_appeal(feedback: pd.DataFrame, catalogue: tuple[Path, list[SongSpec]]) -> None:
    heard = feedback.groupby("track_id").listener_id.nunique()
    likes = feedback[feedback.kind == "like"].groupby("track_id").listener_id.nunique()
    rate = likes.reindex(heard.index, fill_value=0) / heard
    appeal = pd.Series({s.track_id: s.appeal for s in catalogue[1]})
    assert spearmanr(rate, appeal[rate.index]).statistic >= 0.5


def test_plays_include_skips_and_complete_listens(feedback: pd.DataFrame) -> None:
    ms = feedback.loc[feedback.kind == "play", "value"].astype(int)
    full = DURATION * 1000
    assert ms.max() <= full
    skips = (ms < 0.3 * full) & (ms < 30000)
    assert skips.mean() > 0.1 and (ms == full).mean() > 0.3


def test_personal_and_descriptive_tags_exist(feedback: pd.DataFrame) -> None:
    tags = set(feedback.loc[feedback.kind == "tag", "value"].map(_normalise_tag))
    assert len(tags & set(PERSONAL_TAGS)) >= 3
    assert {"chill", "energetic"} <= tags


def test_bad_rows_are_exactly_the_last_ones(catalogue: tuple[Path, list[SongSpec]], feedback: pd.DataFrame) -> None:
    n_bad = 6
    frame = simulate_feedback(catalogue[1], n_listeners=60, seed=5, n_bad_rows=n_bad)
    known = {s.track_id for s in catalogue[1]}
    bad = frame.apply(_malformed, axis=1, known=known)
    assert bad.tolist() == [False] * (len(frame) - n_bad) + [True] * n_bad
    pd.testing.assert_frame_equal(frame.iloc[:-n_bad], feedback)
    tail = frame.iloc[-n_bad:]
    assert {"t9999", "7", "not-a-date", "clap"} <= set(tail.track_id) | set(tail.value) | set(tail.timestamp) | set(tail.kind)


def test_default_sized_feedback_volume() -> None:
    songs = [
        SongSpec(f"t{i:04d}", STYLES[i % 5], f"a{i // 4}", "x", Path("x.mp3"), float(a), 12.0)
        for i, a in enumerate(np.random.default_rng(0).beta(2, 2, 120))
    ]
    frame = simulate_feedback(songs, start=datetime(2026, 1, 1))
    assert 5000 <= len(frame) <= 15000
    taggers = frame[frame.kind == "tag"].groupby("track_id").listener_id.nunique()
    assert taggers.reindex([s.track_id for s in songs], fill_value=0).mean() >= 8


def test_feedback_rejects_bad_arguments(catalogue: tuple[Path, list[SongSpec]]) -> None:
    with pytest.raises(ParameterError, match="songs"):
        simulate_feedback([])
    with pytest.raises(ParameterError, match="n_bad_rows=-1"):
        simulate_feedback(catalogue[1], n_bad_rows=-1)
