"""Audio occlusion explains any model: cells silenced in the song, the model's own prediction read back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from encore.config import load_config
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.explain import explain_audio, explain_audio_targets
from encore.explain.audio import silence_cells, stft_size
from encore.inference import BlendPredictor
from encore.inference.baseline import BaselinePredictor
from encore.models.card import BlendCard, BlendMemberRecord
from encore.train.baseline import fit_baseline

from tone_songs import CLASSES, SAMPLE_RATE, TONE_HZ, TONE_SPAN, make_song


@pytest.fixture(scope="module")
def tone_forest(tmp_path_factory):
    """A forest on the tone songs: the class is decided by a 1.5-kHz tone in 0.8-1.3 s."""
    rng = np.random.default_rng(0)
    rows, waveforms = [], {}
    for split, n in (("train", 30), ("test", 6)):
        for i in range(n):
            label = CLASSES[i % 2]
            tid = f"{split}-{i}"
            waveforms[tid] = make_song(label == "tone", rng)
            rows.append(
                {"track_id": tid, "path": f"/nowhere/{tid}.wav", "artist": f"{split}-{i}", "split": split, "label": label}
            )
    manifest = Manifest(frame=pd.DataFrame(rows), label_names=CLASSES, tag_names=[], regression_names=[])
    config = load_config(
        None, {"features.sample_rate": SAMPLE_RATE, "baseline.n_fft": 512, "baseline.hop_length": 128, "baseline.n_jobs": 1}
    )
    run_dir = tmp_path_factory.mktemp("tone-forest")
    fit_baseline(manifest, waveforms, config, run_dir)
    return BaselinePredictor.from_run(run_dir), waveforms


def _cell_shares(explanation) -> dict[tuple[float, float, float, float], float]:
    """Each raising cell's share, keyed by (start_s, end_s, f_low_hz, f_high_hz), from the ranked list of all cells."""
    return {(s["start_s"], s["end_s"], s["f_low_hz"], s["f_high_hz"]): s["share"] for s in explanation.segments}


def test_silencing_nothing_gives_the_song_back_and_a_cell_removes_its_tone():
    rng = np.random.default_rng(1)
    song = make_song(True, rng)
    n_fft, hop = stft_size(SAMPLE_RATE)
    frames = slice(int(TONE_SPAN[0] * SAMPLE_RATE / hop), int(TONE_SPAN[1] * SAMPLE_RATE / hop) + 2)
    same, silenced = silence_cells(song, sample_rate=SAMPLE_RATE, copies=[[], [(frames, (TONE_HZ * 0.9, TONE_HZ * 1.1))]])
    np.testing.assert_allclose(same, song, atol=1e-5)

    def level(wave: np.ndarray, lo: float, hi: float, f: float) -> float:
        part = wave[int(lo * SAMPLE_RATE) : int(hi * SAMPLE_RATE)]
        spectrum = np.abs(np.fft.rfft(part * np.hanning(part.size)))
        freqs = np.fft.rfftfreq(part.size, 1.0 / SAMPLE_RATE)
        return float(spectrum[np.abs(freqs - f) < 40].max())

    inside = (TONE_SPAN[0] + 0.1, TONE_SPAN[1] - 0.1)
    assert level(silenced, *inside, TONE_HZ) < 0.05 * level(song, *inside, TONE_HZ)  # the tone is gone (> 26 dB)
    # outside the cell's band and span the song is unchanged
    np.testing.assert_allclose(silenced[: int(0.5 * SAMPLE_RATE)], song[: int(0.5 * SAMPLE_RATE)], atol=1e-5)
    assert level(silenced, *inside, 300.0) == pytest.approx(level(song, *inside, 300.0), rel=0.05)


def test_a_forest_is_explained_where_its_tone_is(tone_forest):
    predictor, waveforms = tone_forest
    for track_id in ("test-1", "test-3", "test-5"):  # the tone songs
        explanation = explain_audio(predictor, waveforms[track_id], target="tone", n_segments=8, n_bands=8, top_k=64)
        assert explanation.method == "audio_occlusion" and explanation.evidence == "probability"
        assert explanation.value > 0.5
        top = explanation.segments[0]
        assert top["f_low_hz"] <= TONE_HZ <= top["f_high_hz"], top
        assert top["start_s"] < TONE_SPAN[1] and top["end_s"] > TONE_SPAN[0], top
        # every cell that holds the tone drops more than every cell that does not
        drops = _cell_shares(explanation)
        tone = [
            v for (a, b, lo, hi), v in drops.items() if lo <= TONE_HZ <= hi and a < TONE_SPAN[1] - 0.1 and b > TONE_SPAN[0] + 0.1
        ]
        other = [v for (a, b, lo, hi), v in drops.items() if not (lo <= TONE_HZ <= hi and a < TONE_SPAN[1] and b > TONE_SPAN[0])]
        assert len(tone) >= 2 and min(tone) > max(other), (track_id, tone, max(other))
        assert explanation.attribution.shape == explanation.log_mel.shape
        assert explanation.log_mel.shape[1] == explanation.frame_seconds.size


def test_the_top_class_is_the_default_and_bad_input_is_named(tone_forest):
    predictor, waveforms = tone_forest
    song = waveforms["test-0"]  # no tone
    explanation = explain_audio(predictor, song, n_segments=2, n_bands=2)
    assert explanation.target == "plain" and explanation.kind == "class"
    assert json.loads(json.dumps(explanation.to_dict()))["evidence"] == "probability"
    assert explanation.to_png()[:8] == b"\x89PNG\r\n\x1a\n"
    ticks = []
    explain_audio(predictor, song, n_segments=3, n_bands=2, batch_songs=4, callback=ticks.append)
    assert sum(ticks) == 3 * 2 + 1  # the song and each silenced copy
    # several targets from the same silenced copies: each as explained alone, for the price of one
    ticks.clear()
    both = explain_audio_targets(predictor, song, ["tone", None], n_segments=3, n_bands=2, callback=ticks.append)
    assert sum(ticks) == 3 * 2 + 1 and [e.target for e in both] == ["tone", "plain"]
    for together in both:
        alone = explain_audio(predictor, song, target=together.target, n_segments=3, n_bands=2)
        np.testing.assert_array_equal(together.attribution, alone.attribution)
    with pytest.raises(ParameterError, match="--target 'jazz'"):
        explain_audio(predictor, song, target="jazz")
    with pytest.raises(ParameterError, match="waveform has shape"):
        explain_audio(predictor, np.zeros((2, 100), np.float32))
    with pytest.raises(ParameterError, match="NaN"):
        explain_audio(predictor, np.full(800, np.nan, np.float32))
    with pytest.raises(ParameterError, match="at least one time segment"):
        explain_audio(predictor, song, n_segments=0)


def test_a_blend_is_explained_as_the_weighted_sum_of_its_members(tone_forest, tone_run):
    """The blend's output is its members' weighted mean, so silencing a cell moves it by the weighted mean of theirs."""
    forest, waveforms = tone_forest
    _, network, _, _ = tone_run

    def blend(members):
        records = [
            BlendMemberRecord(name=name, kind=kind, weight=weight, sample_rate=SAMPLE_RATE) for name, kind, _, weight in members
        ]
        card = BlendCard(sample_rate=SAMPLE_RATE, members=records, label_names=CLASSES)
        return BlendPredictor([(name, p, weight) for name, _, p, weight in members], card)

    both = blend([("net", "cnn", network, 0.75), ("trees", "random_forest", forest, 0.25)])
    net = blend([("net", "cnn", network, 1.0)])
    trees = blend([("trees", "random_forest", forest, 1.0)])
    song = waveforms["test-1"]
    grid = {"target": "tone", "n_segments": 4, "n_bands": 4}
    whole, a, b = (explain_audio(p, song, **grid) for p in (both, net, trees))
    assert whole.value == pytest.approx(0.75 * a.value + 0.25 * b.value, abs=1e-5)
    np.testing.assert_allclose(whole.attribution, 0.75 * a.attribution + 0.25 * b.attribution, atol=1e-5)
    assert whole.segments[0]["f_low_hz"] <= TONE_HZ <= whole.segments[0]["f_high_hz"]


def test_a_model_on_segments_computes_only_the_segments_a_cell_touches(tone_forest, tmp_path, monkeypatch):
    """The silenced copies' untouched segments are the song's own bytes: remembered, not computed again,
    and the explanation is the same as computing every segment of every copy."""
    import contextlib

    import encore.explain.audio as audio
    import encore.features.handcrafted as handcrafted

    _, waveforms = tone_forest
    frame = pd.DataFrame(
        [
            {
                "track_id": t,
                "path": f"/nowhere/{t}.wav",
                "artist": t,
                "split": "train",
                "label": CLASSES[int(t.split("-")[1]) % 2],
            }
            for t in waveforms
        ]
    )
    manifest = Manifest(frame=frame, label_names=CLASSES, tag_names=[], regression_names=[])
    overrides = {"baseline.n_fft": 512, "baseline.hop_length": 128, "baseline.n_jobs": 1, "baseline.n_estimators": 30}
    config = load_config(
        None, {"features.sample_rate": SAMPLE_RATE, **overrides, "baseline.segment_seconds": 0.5, "baseline.max_segments": 4}
    )
    fit_baseline(manifest, waveforms, config, tmp_path)
    predictor = BaselinePredictor.from_run(tmp_path)
    calls = []
    compute = handcrafted.compute_handcrafted
    monkeypatch.setattr(handcrafted, "compute_handcrafted", lambda *a, **k: calls.append(1) or compute(*a, **k))
    remembered = explain_audio(predictor, waveforms["test-1"], target="tone", n_segments=8, n_bands=2)
    n_remembered = len(calls)
    calls.clear()
    monkeypatch.setattr(audio, "remembering", lambda _p: contextlib.nullcontext())
    computed = explain_audio(predictor, waveforms["test-1"], target="tone", n_segments=8, n_bands=2)
    assert len(calls) == 4 * (8 * 2 + 1)  # every segment of the song and of each silenced copy
    assert n_remembered <= 4 + 2 * 8 * 2  # the song's 4, then the one or two segments each cell touches
    np.testing.assert_array_equal(remembered.attribution, computed.attribution)
    assert predictor.feature_cache is None  # nothing is kept after the explanation


@pytest.mark.parametrize("hop", [None, 0.5])
def test_a_cnn_runs_only_the_chunks_a_cell_touches(hop, monkeypatch):
    """Across the silenced copies most chunks are the song's own bytes: each distinct chunk runs once, and the
    explanation is the one running every chunk of every copy gives."""
    import contextlib

    from test_attribution import card, song
    from tiny_cnn import build_tiny_model

    import encore.explain.audio as audio
    from encore.inference import Predictor

    predictor = Predictor(build_tiny_model(seed=5), card(hop))
    wave = song(6.0, seed=2)
    ran = []
    runner = predictor.runner
    monkeypatch.setattr(predictor, "runner", lambda batch: ran.append(len(batch)) or runner(batch))
    remembered = explain_audio(predictor, wave, target="jazz", n_segments=6, n_bands=2)
    n_remembered = sum(ran)
    ran.clear()
    monkeypatch.setattr(audio, "remembering", lambda _p: contextlib.nullcontext())
    computed = explain_audio(predictor, wave, target="jazz", n_segments=6, n_bands=2)
    n_chunks = len(predictor._chunks(wave))
    assert sum(ran) == n_chunks * (6 * 2 + 1) and n_remembered < sum(ran) / 2
    np.testing.assert_allclose(remembered.attribution, computed.attribution, atol=1e-6)
    assert not isinstance(predictor.runner, audio.RememberingRunner)  # put back after the explanation
