"""Attribution lands where the evidence is: a tone in a known band and time span."""

from __future__ import annotations

import numpy as np
import pytest

from encore.explain import explain_waveform

from tone_songs import TONE_HZ, TONE_SPAN


def region_share(explanation, *, f_tol: float = 0.25, t_tol: float = 0.15) -> float:
    """Share of positive attribution inside the tone's band (+-25 %) and span (+-0.15 s)."""
    positive = np.clip(explanation.attribution, 0.0, None)
    centres = explanation.band_edges_hz.mean(axis=1)
    in_band = (centres >= TONE_HZ * (1 - f_tol)) & (centres <= TONE_HZ * (1 + f_tol))
    times = explanation.frame_seconds
    in_span = (times >= TONE_SPAN[0] - t_tol) & (times < TONE_SPAN[1] + t_tol)
    assert in_band.mean() < 0.3 and in_span.mean() < 0.5  # the region is a small part of the picture
    return float(positive[np.ix_(in_band, in_span)].sum() / positive.sum())


def test_the_model_learnt_the_tone(tone_run):
    _, predictor, waveforms, manifest = tone_run
    test = manifest.subset("test")
    probs = predictor.predict_arrays([waveforms[t] for t in test["track_id"]])["class_probs"]
    assert (probs.argmax(1) == manifest.class_targets(test)).mean() == 1.0


@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
def test_attribution_falls_on_the_tone(tone_run, method):
    _, predictor, waveforms, manifest = tone_run
    test = manifest.subset("test")
    tone_songs = [t for t, label in zip(test["track_id"], test["label"]) if label == "tone"]
    for track_id in tone_songs:
        explanation = explain_waveform(predictor, waveforms[track_id], target="tone", method=method)
        share = region_share(explanation)
        assert share >= 0.5, f"{method} on {track_id}: only {share:.0%} of the attribution on the tone"
        top = explanation.segments[0]
        assert top["f_low_hz"] <= TONE_HZ * 1.25 and top["f_high_hz"] >= TONE_HZ * 0.75
        assert top["start_s"] < TONE_SPAN[1] and top["end_s"] > TONE_SPAN[0]


def test_explanation_outputs_and_errors(tone_run):
    import json

    from encore.exceptions import ParameterError

    _, predictor, waveforms, _ = tone_run
    song = waveforms["test-1"]
    explanation = explain_waveform(predictor, song, target="appeal", method="integrated_gradients")
    assert explanation.kind == "score" and explanation.log_mel.shape == explanation.attribution.shape
    assert explanation.log_mel.shape[0] == 32 and explanation.frame_seconds.size == explanation.log_mel.shape[1]
    json.dumps(explanation.to_dict())
    assert explanation.to_png()[:8] == b"\x89PNG\r\n\x1a\n"
    top = explain_waveform(predictor, song)  # None: the top predicted class
    assert top.kind == "class" and top.target == "tone" and top.value > 0.5
    with pytest.raises(ParameterError, match="--target 'jazz'"):
        explain_waveform(predictor, song, target="jazz")
    with pytest.raises(ParameterError, match="--method 'saliency'"):
        explain_waveform(predictor, song, method="saliency")
    with pytest.raises(ParameterError, match="waveform has shape"):
        explain_waveform(predictor, np.zeros((2, 100), np.float32))
    with pytest.raises(ParameterError, match="need a CNN run.*audio occlusion"):
        explain_waveform(object(), song)
