"""Tag normalisation and soft tag targets."""

from __future__ import annotations

import pandas as pd
import pytest

from encore.exceptions import ParameterError
from encore.targets.tags import (
    build_tag_targets,
    close_spellings,
    join_music_suffix,
    normalize_tag,
    one_edit_apart,
    tag_key,
    tag_vocabulary,
)


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
        ("Pop!", "pop"),  # trailing "!", "?" and "." dropped
        ("!!!", "!!!"),  # unless nothing would be left (a band)
        ("80's", "80s"),  # a decade's apostrophe
        ("80\u2019s", "80s"),
        ("rock 'n' roll", "rock and roll"),  # "and" as listeners write it, between two words
        ("Rock & Roll", "rock and roll"),
        ("rock-n-roll", "rock and roll"),
        ("drum n' bass", "drum and bass"),
        ("R&B", "r&b"),  # inside a word, "&" stays
        ("n sync", "n sync"),  # not between two words
        ("r n b", "r n b"),  # nor between single letters
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


def test_x_music_joins_x_only_where_x_is_used():
    names = pd.Series(["pop music", "pop", "world music", "early music", "music"])
    assert join_music_suffix(names).tolist() == ["pop", "pop", "world music", "early music", "music"]
    events = _tags([("s1", "u1", "Pop Music"), ("s2", "u2", "pop"), ("s1", "u3", "early music")])
    targets = build_tag_targets(events, min_listeners=1)
    assert targets.tag_listeners.to_dict() == {"pop": 2, "early music": 1}
    vocabulary = tag_vocabulary(events).set_index("tag")
    assert vocabulary.loc["pop", "variants"] == [["Pop Music", 1], ["pop", 1]]


def test_close_spellings_are_hints_one_edit_from_a_more_used_label():
    assert one_edit_apart("clasical", "classical") and one_edit_apart("classcial", "classical")
    assert one_edit_apart("trance", "france") and not one_edit_apart("rock", "rock")
    assert not one_edit_apart("techno", "tech") and not one_edit_apart("ambient", "ambeint x")
    found = close_spellings(["classical", "trance", "jazz", "france", "clasical", "jaz"])
    assert found == {"france": "trance", "clasical": "classical"}  # "jaz": shorter than 5 letters
