"""Tag normalisation and soft tag targets."""

from __future__ import annotations

import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.tags import build_tag_targets, normalize_tag, tag_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hip-Hop", "hip hop"),
        ("  hip   hop ", "hip hop"),
        ("HIP_HOP", "hip hop"),
        ("Female Vocals", "female vocal"),
        ("ＲＯＣＫ", "rock"),  # NFKC folds full-width letters
        ("Straße", "strasse"),  # casefold, not lower
        ("Blues", "blues"),  # exception to the plural rule
        ("bass", "bass"),
        ("famous", "famous"),
        ("drums", "drum"),  # plural "-s" dropped from words of 5+ letters
        ("1990s", "1990s"),
        ("80s", "80s"),
        ("'chill'", "chill"),
        ("", None),
        ("  - _ ", None),
        (None, None),
    ],
)
def test_normalize_tag(text, expected):
    assert normalize_tag(text) == expected


def test_spellings_differing_in_spaces_share_a_key():
    spellings = ["hip hop", "Hip-Hop", "hiphop", "HIP_HOP"]
    assert {tag_key(normalize_tag(text)) for text in spellings} == {"hiphop"}


def test_synonyms_are_normalised_and_matched_without_spaces():
    synonyms = {"Hip Hop": "Rap", "R n B": "r&b"}
    assert normalize_tag("hiphop", synonyms=synonyms) == "rap"
    assert normalize_tag("Hip-Hop", synonyms=synonyms) == "rap"
    assert normalize_tag("rnb", synonyms=synonyms) == "r&b"
    assert normalize_tag("rock", synonyms=synonyms) == "rock"


def _tags(rows):
    return pd.DataFrame(rows, columns=["track_id", "listener_id", "value_text"]).assign(kind="tag")


def test_build_tag_targets_shares_support_and_agreement():
    events = _tags(
        [
            ("s1", "u1", "Rock"),
            ("s1", "u2", "rock"),
            ("s1", "u3", "Jazz"),
            ("s1", "u1", "ROCK"),
            ("s1", "u4", "Favorites"),
            ("s2", "u1", "jazz"),
            ("s2", "u2", "Jazz"),
            ("s2", "u3", "jazz"),
            ("s2", "u2", "rock"),
        ]
    )
    targets = build_tag_targets(events, min_listeners=1)
    assert targets.soft.columns.tolist() == ["jazz", "rock"]  # most listeners first
    assert targets.support.to_dict() == {"s1": 3, "s2": 3}  # u4 only used a stop tag
    assert targets.soft.loc["s1"].to_dict() == pytest.approx({"rock": 2 / 3, "jazz": 1 / 3})
    assert targets.soft.loc["s2"].to_dict() == pytest.approx({"rock": 1 / 3, "jazz": 1.0})
    assert targets.agreement.to_dict() == pytest.approx({"s1": 2 / 3, "s2": 1.0})
    assert targets.tag_listeners.to_dict() == {"jazz": 3, "rock": 2}


def test_merged_tag_is_named_by_its_most_common_spelling():
    events = _tags([("s1", "u1", "hip hop"), ("s1", "u2", "Hip-Hop"), ("s2", "u3", "hiphop")])
    targets = build_tag_targets(events, min_listeners=3)
    assert targets.soft.columns.tolist() == ["hip hop"]
    assert targets.tag_listeners.to_dict() == {"hip hop": 3}


def test_min_listeners_and_vocabulary():
    events = _tags([("s1", "u1", "rock"), ("s1", "u2", "rock"), ("s2", "u3", "rock"), ("s2", "u3", "sitar")])
    assert build_tag_targets(events, min_listeners=3).soft.columns.tolist() == ["rock"]
    fixed = build_tag_targets(events, vocabulary=["Sitar", "Rock", "polka"])
    assert fixed.soft.columns.tolist() == ["Sitar", "Rock", "polka"]
    assert fixed.soft.loc["s2"].tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ParameterError, match="'ROCK'.*'Rock'"):
        build_tag_targets(events, vocabulary=["Rock", "ROCK"])
    with pytest.raises(ParameterError, match="min_listeners=0"):
        build_tag_targets(events, min_listeners=0)


def test_events_without_listener_count_as_separate_listeners():
    events = _tags([("s1", None, "rock"), ("s1", None, "rock"), ("s1", "u1", "pop")])
    targets = build_tag_targets(events, min_listeners=1)
    assert targets.support["s1"] == 3
    assert targets.soft.loc["s1", "rock"] == pytest.approx(2 / 3)


def test_other_kinds_are_ignored_and_empty_input_works():
    events = pd.DataFrame({"track_id": ["s1"], "listener_id": ["u1"], "kind": ["like"], "value_text": [None]})
    targets = build_tag_targets(events)
    assert targets.soft.empty and targets.support.empty and targets.tag_listeners.empty
