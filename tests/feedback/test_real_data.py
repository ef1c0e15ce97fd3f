"""Checks on the real data in ../shared/data (Emotify, Last.fm HetRec 2011, Spotify history).

Skipped with the reason when the folder is absent; with ENCORE_REQUIRE_DATA=1 (CI) a
missing folder is a failure. Every expected value is computed here, independently of
encore, from the raw files (or read from the dataset's README).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from encore.targets.appeal import compute_appeal, skip_rates
from encore.feedback.importers import (
    GEMS_EMOTIONS,
    import_feedback_frame,
    import_spotify,
    import_tracks,
    read_emotify_annotations,
)
from encore.feedback.importers.events import import_table
from encore.feedback.importers.lastfm import read_lastfm_tags
from encore.targets.reliability import listener_responses, song_rates, split_half_reliability
from encore.store import Store
from encore.targets.tags import normalize_tag, tag_key, tag_vocabulary

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# The table in emotify/README.md: per-song rate -> split-half reliability.
EMOTIFY_RELIABILITY = {
    "like_rate": 0.29,
    "like_minus_dislike": 0.40,
    "joyful_activation": 0.81,
    "calmness": 0.78,
    "tenderness": 0.72,
    "power": 0.71,
    "nostalgia": 0.67,
    "tension": 0.67,
    "sadness": 0.61,
    "solemnity": 0.56,
    "amazement": 0.26,
}


def _dataset(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        if os.environ.get("ENCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"real data required (ENCORE_REQUIRE_DATA=1) but {folder} is missing")
        pytest.skip(f"real data not found at {folder} (the shared/ folder beside the repository)")
    return folder


@pytest.fixture(scope="module")
def emotify(tmp_path_factory):
    root = _dataset("emotify")
    with Store.open(tmp_path_factory.mktemp("emotify") / "store.sqlite") as store:
        import_tracks(store, root, layout="emotify")
        report = import_feedback_frame(store, read_emotify_annotations(root / "annotations.csv"), name="annotations.csv")
        assert report.quarantined == 0
        yield store.events()


@pytest.fixture(scope="module")
def annotations():
    frame = pd.read_csv(_dataset("emotify") / "annotations.csv", skipinitialspace=True)
    frame.columns = [name.strip() for name in frame.columns]
    frame["track_id"] = frame["track id"].astype(str)
    return frame


def test_emotify_like_and_emotion_rates_equal_the_vote_means(emotify, annotations):
    rates = song_rates(listener_responses(emotify, tags=list(GEMS_EMOTIONS)))
    votes = annotations.groupby("track_id")[["liked", "disliked", *GEMS_EMOTIONS]].mean()
    assert sorted(rates.index) == sorted(votes.index) and len(votes) == 400
    rates = rates.loc[votes.index]
    np.testing.assert_allclose(rates["like_rate"], votes["liked"], atol=1e-12)
    np.testing.assert_allclose(rates["like_minus_dislike"], votes["liked"] - votes["disliked"], atol=1e-12)
    for emotion in GEMS_EMOTIONS:
        np.testing.assert_allclose(rates[f"tag:{emotion}"], votes[emotion], atol=1e-12, err_msg=emotion)
    # compute_appeal's like rate: likes over likes and dislikes, per song.
    appeal = compute_appeal(emotify).set_index("track_id")
    counts = annotations.groupby("track_id")[["liked", "disliked"]].sum()
    expected = counts["liked"] / (counts["liked"] + counts["disliked"])
    np.testing.assert_allclose(appeal.loc[expected.index, "like_rate"], expected, atol=1e-12)


def test_emotify_reliabilities_match_the_readme(emotify):
    responses = listener_responses(emotify, tags=list(GEMS_EMOTIONS))
    measured = split_half_reliability(responses, n_splits=50, seed=0)
    for target, published in EMOTIFY_RELIABILITY.items():
        key = target if target in measured else f"tag:{target}"
        value = measured[key]
        # The README's 50 random splits are not ours: allow their Monte-Carlo spread.
        assert value["reliability"] == pytest.approx(published, abs=0.02), target
        assert value["ceiling"] == pytest.approx(np.sqrt(value["reliability"]))


def test_lastfm_tag_assignments_import_without_loss_and_labels_list_their_variants(tmp_path):
    root = _dataset("lastfm-hetrec2011")
    raw = pd.read_csv(root / "user_taggedartists.dat", sep="\t")
    names = pd.read_csv(root / "tags.dat", sep="\t", encoding="latin-1").set_index("tagID")["tagValue"]
    with Store.open(tmp_path / "store.sqlite") as store:
        report = import_tracks(store, root, layout="lastfm")
        assert report.quarantined == 0
        tags = import_table(store, read_lastfm_tags(root), str(root / "user_taggedartists.dat"), None, "lastfm")
        assert (tags.read, tags.stored, tags.duplicate, tags.quarantined) == (len(raw), len(raw), 0, 0) == (186479,) * 2 + (0, 0)
        events = store.events(["tag"])
    assert len(events) == 186_479
    assert sorted(events["value_text"].value_counts().items()) == sorted(
        names.loc[raw["tagID"]].str.strip().value_counts().items()
    )  # every tag text, ISO-8859-1 decoded
    vocabulary = tag_vocabulary(events).head(50)
    assert len(vocabulary) == 50
    for row in vocabulary.itertuples(index=False):
        assert row.variants, row.tag
        assert sum(uses for _, uses in row.variants) >= row.listeners
        for text, _ in row.variants:  # each raw variant normalises onto its label, or is "<label> music"
            assert tag_key(normalize_tag(text)) in (tag_key(row.tag), tag_key(row.tag) + "music"), (text, row.tag)
    merged = dict(zip(vocabulary["tag"], vocabulary["variants"]))
    assert {"hip-hop", "hip hop", "hiphop"} <= {text for text, _ in merged["hip hop"]}
    assert "pop music" in {text.casefold() for text, _ in merged["pop"]}
    everything = tag_vocabulary(events).set_index("tag")  # the ways of writing "and" are one label
    assert {"rock n roll", "rock and roll", "rock 'n' roll"} <= {
        t.casefold() for t, _ in everything.loc["rock and roll", "variants"]
    }
    assert "seen live" not in merged and "favorites" not in merged


def test_spotify_plays_and_skips_import_and_skip_rate_per_track(tmp_path):
    root = _dataset("spotify-streaming-history")
    plays = pd.concat(
        [pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))) for path in sorted(root.glob("StreamingHistory*.json"))],
        ignore_index=True,
    )
    with Store.open(tmp_path / "store.sqlite") as store:
        import_tracks(store, root, layout="spotify")
        report = import_spotify(store, root)
        assert (report.read, report.stored, report.quarantined) == (len(plays), len(plays), 0) == (33489, 33489, 0)
        assert import_spotify(store, root).stored == 0  # again: nothing new
        tracks = store.tracks().set_index("track_id")
        rates = skip_rates(store.events(["play", "skip"])).set_index("track_id")
    plays["key"] = plays["artistName"].str.strip().str.casefold() + "\x1f" + plays["trackName"].str.strip().str.casefold()
    expected = plays.groupby("key")["msPlayed"].agg(listens="size", skips=lambda ms: int((ms < 30_000).sum()))
    assert len(rates) == len(expected) and rates["listens"].sum() == 33489
    assert rates["skips"].sum() == int((plays["msPlayed"] < 30_000).sum())
    keys = tracks["artist"].str.casefold() + "\x1f" + tracks["title"].str.casefold()
    ours = rates.join(keys.rename("key")).set_index("key").sort_index()
    pd.testing.assert_frame_equal(ours[["listens", "skips"]], expected.sort_index(), check_names=False, check_dtype=False)
    np.testing.assert_allclose(ours["skip_rate"], expected["skips"] / expected["listens"])
