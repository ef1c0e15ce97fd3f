"""Listener appeal: like, rating and listen rates shrunk by fitted priors and combined."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.appeal import compute_appeal


def _events(rows):
    frame = pd.DataFrame(rows, columns=["track_id", "kind", "value_num"])
    frame["listener_id"] = [f"u{i}" for i in range(len(frame))]
    return frame


def _by_track(result):
    return result.set_index("track_id")


def test_more_likes_give_higher_appeal():
    rows = [("loved", "like", 1)] * 8 + [("loved", "dislike", 1)] * 2
    rows += [("mixed", "like", 1)] * 5 + [("mixed", "dislike", 1)] * 5
    rows += [("hated", "like", 1)] * 1 + [("hated", "dislike", 1)] * 9
    result = _by_track(compute_appeal(_events(rows)))
    assert result.loc["loved", "appeal"] > result.loc["mixed", "appeal"] > result.loc["hated", "appeal"]
    assert result.loc["loved", "like_rate"] == pytest.approx(0.8)
    assert result["appeal"].between(0, 1).all()
    assert result.columns.tolist() == [
        "appeal",
        "appeal_sd",
        "n_events",
        "n_listeners",
        "like_rate",
        "rating_mean",
        "skip_rate",
    ]


def test_fewer_events_give_larger_sd():
    rows = [("many", "like", 1)] * 30 + [("many", "dislike", 1)] * 10
    rows += [("few", "like", 1)] * 3 + [("few", "dislike", 1)] * 1
    result = _by_track(compute_appeal(_events(rows)))
    assert result.loc["few", "appeal_sd"] > result.loc["many", "appeal_sd"]
    assert result.loc["many", "n_events"] == 40


def test_prior_pulls_thin_evidence_towards_the_catalogue_rate():
    rows = [("a", "dislike", 1)] * 9 + [("a", "like", 1)] + [("b", "like", 1)]
    weak = _by_track(compute_appeal(_events(rows), prior_strength=1.0))
    strong = _by_track(compute_appeal(_events(rows), prior_strength=50.0))
    assert strong.loc["b", "appeal"] < weak.loc["b", "appeal"]
    assert strong.loc["b", "appeal"] == pytest.approx(0.2, abs=0.03)  # catalogue rate 2 / 11


def test_short_plays_count_as_skips_when_the_duration_is_known():
    rows = [("short", "play", 20000)] * 4 + [("long", "play", 20000)] * 4
    durations = {"short": 40.0, "long": 600.0}  # thresholds 12 s and 30 s
    result = _by_track(compute_appeal(_events(rows), durations=durations))
    assert result.loc["short", "skip_rate"] == 0.0
    assert result.loc["long", "skip_rate"] == 1.0
    assert result.loc["short", "appeal"] > result.loc["long", "appeal"]
    without = _by_track(compute_appeal(_events(rows)))
    assert without.loc["short", "skip_rate"] == 1.0  # 20 s < skip_ms


def test_ratings_map_to_fractional_success_and_skips_weigh_less():
    rows = [("five", "rating", 5)] * 4 + [("three", "rating", 3)] * 4 + [("one", "rating", 1)] * 4
    rows += [("skipped", "skip", 1000)] * 4 + [("disliked", "dislike", 1)] * 4
    result = _by_track(compute_appeal(_events(rows)))
    assert result.loc["five", "appeal"] > result.loc["three", "appeal"] > result.loc["one", "appeal"]
    # Four skips are weaker evidence than four dislikes.
    assert result.loc["skipped", "appeal"] > result.loc["disliked", "appeal"]
    assert result.loc["skipped", "appeal_sd"] > result.loc["disliked", "appeal_sd"]


def test_a_listener_counts_with_their_latest_opinion():
    events = pd.DataFrame(
        {
            "track_id": ["a", "a", "a"],
            "listener_id": ["u1", "u1", "u2"],
            "kind": ["like", "dislike", "like"],
            "value_num": [1.0, 1.0, 1.0],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01"], utc=True),
        }
    )
    result = _by_track(compute_appeal(events))
    assert result.loc["a", "n_events"] == 2 and result.loc["a", "like_rate"] == 0.5


def test_tags_are_ignored_and_empty_input_works():
    events = pd.DataFrame({"track_id": ["a"], "kind": ["tag"], "value_num": [None]})
    assert compute_appeal(events).empty


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"skip_ms": 0}, "skip_ms=0"), ({"skip_fraction": 1.5}, "skip_fraction=1.5"), ({"prior_strength": -1}, "prior_strength")],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        compute_appeal(_events([("a", "like", 1)]), **kwargs)


def _catalogue(seed: int = 0, n_songs: int = 40, spread: float = 0.3) -> pd.DataFrame:
    """Songs with true appeal around 0.5 (+- spread); 3-30 listeners each like/dislike,
    rate and play them accordingly."""
    rng = np.random.default_rng(seed)
    rows = []
    for song in range(n_songs):
        truth = float(np.clip(0.5 + spread * rng.uniform(-1, 1), 0.02, 0.98))
        for listener in range(int(rng.integers(3, 30))):
            liked = rng.random() < truth
            rows += [
                (f"s{song}", f"u{listener}", "like" if liked else "dislike", 1.0),
                (f"s{song}", f"u{listener}", "rating", float(np.clip(round(1 + 4 * truth + rng.normal(0, 0.7)), 1, 5))),
                (f"s{song}", f"u{listener}", "play", 200_000.0 if rng.random() < truth else 5_000.0),
            ]
    return pd.DataFrame(rows, columns=["track_id", "listener_id", "kind", "value_num"])


def test_raw_rates_listeners_and_rating_mean_are_reported():
    events = pd.DataFrame(
        {
            "track_id": ["a"] * 6,
            "listener_id": ["u1", "u1", "u2", "u2", None, "u3"],
            "kind": ["like", "rating", "dislike", "rating", "play", "skip"],
            "value_num": [1.0, 5.0, 1.0, 2.0, 10_000.0, 0.0],
        }
    )
    row = compute_appeal(events).iloc[0]
    assert (row["n_events"], row["n_listeners"]) == (6, 4)  # u1, u2, u3 and one anonymous play
    assert (row["like_rate"], row["rating_mean"], row["skip_rate"]) == (0.5, 3.5, 1.0)


def test_fitted_prior_shrinks_less_when_songs_truly_differ():
    # Where songs differ a lot the fitted prior is weak and appeal follows each song's
    # own evidence; where they differ by noise alone it is strong and appeal stays near the mean.
    different = compute_appeal(_catalogue(spread=0.45))
    alike = compute_appeal(_catalogue(spread=0.0))
    assert different["appeal"].std() > 3 * alike["appeal"].std()
    raw = different["like_rate"]
    assert np.corrcoef(different["appeal"], raw)[0, 1] > 0.8


def test_appeal_is_a_rate_not_a_count():
    # Same like rate, ten times the listeners: the same appeal, a smaller standard error.
    rows = [("small", "like", 1)] * 6 + [("small", "dislike", 1)] * 4
    rows += [("big", "like", 1)] * 60 + [("big", "dislike", 1)] * 40
    result = _by_track(compute_appeal(_events(rows), prior_strength=2.0))
    assert result.loc["big", "appeal"] == pytest.approx(result.loc["small", "appeal"], abs=0.02)
    assert result.loc["big", "appeal_sd"] < result.loc["small", "appeal_sd"] / 2


def test_ratings_are_shrunk_by_their_own_spread_not_a_bernoulli_ones():
    """Star ratings of one song vary by about a star, far less than a like's 0/1: twelve songs rated
    by eight listeners each, the songs' true means 2 to 4.5 stars, keep their differences (a
    Bernoulli noise model took them for noise and shrank every song to within 0.02 of the mean)."""
    rng = np.random.default_rng(3)
    means = np.linspace(2.0, 4.5, 12)
    rows = [
        (f"s{i:02d}", "rating", float(np.clip(np.round(rng.normal(m, 0.7)), 1, 5))) for i, m in enumerate(means) for _ in range(8)
    ]
    result = _by_track(compute_appeal(_events(rows)))
    truth = (means - 1.0) / 4.0
    assert result["appeal"].max() - result["appeal"].min() > 0.6 * (truth.max() - truth.min())
    assert np.corrcoef(result["appeal"], truth)[0, 1] > 0.9
    # its standard error comes from the spread of single ratings within songs (over their number and
    # the prior's pseudo-ratings), not from a coin's m (1 - m)
    success = pd.DataFrame(rows, columns=["track_id", "kind", "stars"]).assign(x=lambda f: (f["stars"] - 1) / 4)
    within = success.groupby("track_id")["x"].var().mean()
    assert np.sqrt(within / (8 + 101)) <= result["appeal_sd"].min() <= result["appeal_sd"].max() <= np.sqrt(within / 10)
    assert result["appeal_sd"].max() < 0.5 / np.sqrt(8)
