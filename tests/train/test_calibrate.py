"""The song temperature is kept only when it calibrates songs it was not fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from encore.train.calibrate import choose_song_temperature, song_log_probs


def _songs(n: int, scale: float, seed: int, n_classes: int = 4, n_chunks: int = 4) -> tuple[list[np.ndarray], np.ndarray]:
    """Chunk logits whose song labels are drawn from softmax(base): calibrated at ``scale`` 1,
    overconfident above 1."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.5, size=(n, n_classes))
    probs = np.exp(base) / np.exp(base).sum(1, keepdims=True)
    truth = np.array([rng.choice(n_classes, p=row) for row in probs])
    logits = [np.repeat(base[i][None] * scale, n_chunks, 0) + rng.normal(0, 0.05, (n_chunks, n_classes)) for i in range(n)]
    return logits, truth


@pytest.mark.parametrize("aggregate", ["mean_logits", "mean_probs"])
def test_an_overconfident_model_keeps_its_temperature(aggregate):
    logits, truth = _songs(60, scale=4.0, seed=0)
    chosen = choose_song_temperature(logits, truth, aggregate=aggregate)
    assert chosen["kept"] and chosen["reason"].startswith("kept")
    assert chosen["temperature"] == chosen["fitted_temperature"] > 2.0  # softens the overconfident logits
    cross = chosen["cross_fit"]
    assert cross["nll_scaled"] < cross["nll_raw"] and cross["ece_scaled"] < cross["ece_raw"]
    assert all(t > 1.5 for t in cross["temperatures"])


def test_a_calibrated_model_serves_temperature_one_and_says_why():
    logits, truth = _songs(60, scale=1.0, seed=0)
    chosen = choose_song_temperature(logits, truth, aggregate="mean_logits")
    assert not chosen["kept"] and chosen["temperature"] == 1.0
    assert chosen["fitted_temperature"] != 1.0  # a temperature was fitted, in-sample better...
    assert chosen["nll_after"] <= chosen["nll_before"]
    # ...but not on the songs it was not fitted on
    assert chosen["cross_fit"]["nll_scaled"] >= chosen["cross_fit"]["nll_raw"]
    assert chosen["reason"].startswith("not kept") and "NLL" in chosen["reason"] and "temperature 1" in chosen["reason"]


def test_a_temperature_that_does_not_transfer_between_halves_is_not_kept():
    # One half of the songs overconfident, the other underconfident: each half's temperature
    # makes the other half worse.
    over, truth_over = _songs(30, scale=4.0, seed=1)
    under, truth_under = _songs(30, scale=0.3, seed=2)
    halves = np.r_[np.zeros(30, dtype=int), np.ones(30, dtype=int)]
    chosen = choose_song_temperature(over + under, np.r_[truth_over, truth_under], aggregate="mean_logits", halves=halves)
    low, high = sorted(chosen["cross_fit"]["temperatures"])
    assert low < 1.0 < high
    assert not chosen["kept"] and chosen["temperature"] == 1.0
    assert chosen["cross_fit"]["nll_scaled"] > chosen["cross_fit"]["nll_raw"]


def test_too_few_songs_to_cross_fit_keep_temperature_one():
    logits, truth = _songs(3, scale=4.0, seed=0)
    chosen = choose_song_temperature(logits, truth, aggregate="mean_logits")
    assert not chosen["kept"] and chosen["temperature"] == 1.0 and "too few" in chosen["reason"]
    assert "cross_fit" not in chosen


def test_song_log_probs_match_the_two_aggregations():
    chunks = [np.array([[2.0, 0.0], [0.0, 0.0]])]
    mean_logits = np.exp(song_log_probs(chunks, 2.0, "mean_logits"))[0]
    assert mean_logits == pytest.approx(np.exp([0.5, 0.0]) / np.exp([0.5, 0.0]).sum())
    mean_probs = np.exp(song_log_probs(chunks, 2.0, "mean_probs"))[0]
    first = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    assert mean_probs == pytest.approx((first + [0.5, 0.5]) / 2)
