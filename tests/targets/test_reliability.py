"""Split-half reliability: signal vs noise, seeding, the ceiling, and responses from events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.reliability import listener_responses, song_rates, split_half_reliability


def _responses(signal: float, n_songs: int = 60, n_listeners: int = 20, seed: int = 0) -> pd.DataFrame:
    """Listeners answer 1 with probability 0.5 + signal * (song's true offset in [-0.5, 0.5])."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(-0.5, 0.5, n_songs)
    rows = [
        (f"s{song}", f"u{listener}", float(rng.random() < 0.5 + signal * truth[song]))
        for song in range(n_songs)
        for listener in range(n_listeners)
    ]
    return pd.DataFrame(rows, columns=["track_id", "listener", "calm"])


def test_signal_is_reliable_noise_is_not_and_ceiling_is_the_square_root():
    strong = split_half_reliability(_responses(0.9), n_splits=20)["calm"]
    noise = split_half_reliability(_responses(0.0), n_splits=20)["calm"]
    assert strong["reliability"] > 0.8 and abs(noise["reliability"]) < 0.2
    assert strong["ceiling"] == pytest.approx(np.sqrt(strong["reliability"]))
    assert strong["n_songs"] == 60


def test_more_listeners_make_a_rate_more_reliable():
    few = split_half_reliability(_responses(0.5, n_listeners=6), n_splits=20)["calm"]["reliability"]
    many = split_half_reliability(_responses(0.5, n_listeners=40), n_splits=20)["calm"]["reliability"]
    assert many > few


def test_same_seed_same_result_other_seed_differs():
    responses = _responses(0.5)
    first = split_half_reliability(responses, n_splits=5, seed=3)
    assert split_half_reliability(responses, n_splits=5, seed=3) == first
    assert split_half_reliability(responses, n_splits=5, seed=4) != first


def test_too_few_songs_or_listeners_give_nan_not_an_error():
    tiny = _responses(0.9, n_songs=2)
    assert np.isnan(split_half_reliability(tiny, n_splits=3)["calm"]["reliability"])
    lonely = _responses(0.9, n_listeners=1)
    assert split_half_reliability(lonely, n_splits=3)["calm"]["n_songs"] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"n_splits": 0}, "n_splits"), ({"min_listeners": 1}, "min_listeners"), ({"targets": ["loud"]}, "loud")]
)
def test_bad_options(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        split_half_reliability(_responses(0.5, n_songs=5), **kwargs)


def test_listener_responses_from_events():
    events = pd.DataFrame(
        {
            "track_id": ["a", "a", "a", "a", "a", "b", "b"],
            "listener_id": ["u1", "u1", "u2", "u3", None, "u1", "u2"],
            "kind": ["like", "tag", "dislike", "play", "like", "rating", "tag"],
            "value_num": [1.0, np.nan, 1.0, 1000.0, 1.0, 4.0, np.nan],
            "value_text": [None, "Hip-Hop", None, None, None, None, "hip hop"],
        }
    )
    responses = listener_responses(events, tags=["hip hop"]).set_index(["track_id", "listener"])
    assert responses.loc[("a", "u1")].to_dict() == {
        "like_rate": 1.0,
        "like_minus_dislike": 1.0,
        "appeal": 1.0,
        "tag:hip hop": 1.0,
    }
    assert responses.loc[("a", "u2"), "like_minus_dislike"] == -1.0
    assert np.isnan(responses.loc[("a", "u3"), "appeal"])  # a play only: no opinion, but a listener
    assert responses.loc[("b", "u1"), "appeal"] == 0.75  # 4 stars
    rates = song_rates(responses.reset_index())
    assert rates.loc["a", "like_rate"] == pytest.approx(1 / 3)  # the anonymous like is left out
    assert rates.loc["b", "tag:hip hop"] == 0.5
