"""Free-text listener tags: normalisation and per-song soft tag targets.

Tags arrive as listeners typed them ("Hip-Hop", "hip hop", "hiphop", "Female Vocals").
:func:`normalize_tag` maps each to one spelling; :func:`tag_key` then drops spaces so
spellings that differ only in spacing meet, and :func:`build_tag_targets` names each
merged tag by its most common spelling. Stop tags (personal bookkeeping such as
"favorites" or "seen live") say nothing about the music and are dropped.

Soft targets follow the usual social-tagging recipe (e.g. the MagnaTagATune and
Million Song Dataset tag sets): per song, the share of the song's tagging listeners who
used each tag, over a vocabulary of tags used by at least ``min_listeners`` listeners.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from encore.exceptions import ParameterError

__all__ = [
    "DEFAULT_STOP_TAGS",
    "TagTargets",
    "build_tag_targets",
    "normalize_tag",
    "normalize_tags",
    "prepare_tag_votes",
    "join_music_suffix",
    "close_spellings",
    "tag_key",
    "tag_vocabulary",
]

logger = logging.getLogger(__name__)

DEFAULT_STOP_TAGS: frozenset[str] = frozenset(
    {
        "favorites",
        "favourite",
        "favorite",
        "favourites",
        "favorite songs",
        "favourite songs",
        "seen live",
        "my playlist",
        "playlist",
        "love it",
        "loved",
        "albums i own",
        "i own it",
        "owned",
        "my music",
        "my collection",
        "check out",
        "to listen",
        "to check",
        "spotify",
        "under 2000 listeners",
        "good",
        "great",
        "awesome",
        "best",
        "cool",
        "amazing",
        "favs",
    }
)
"""Personal or evaluative tags that describe the listener rather than the music.
Compared after normalisation, so "Favorites", "favourite" and "Seen-Live" all match."""

_PLURAL_EXCEPTIONS = frozenset(
    {"blues", "chaos", "christmas", "series", "species", "always", "perhaps", "texas", "kansas", "lyrics"}
)
ANONYMOUS_PREFIX = "\x00anonymous-"
"""Listener ids given to events without one: each such event is its own listener."""
_SEPARATORS = re.compile(r"[-_\u2010-\u2015\u2212]+")
_TRAILING = re.compile(r"[!?.]+$")
_DECADE = re.compile(r"(\d)[\'\u2019]s\b")
_AND = {"&": "and", "n": "and", "'n'": "and", "'n": "and", "n'": "and", "\u2019n\u2019": "and"}
"""Between two words of two letters or more, the ways listeners write "and": "rock n roll", "rock 'n' roll",
"drum & bass" (not "r n b", which stays with "rnb" and "r&b")."""
_MUSIC = "music"
_SPACES = re.compile(r"\s+")


def _singular(word: str) -> str:
    """Drops a plural "-s" from words of at least 5 letters, where that is safe."""
    if (
        len(word) >= 5
        and word.isalpha()
        and word.endswith("s")
        and not word.endswith(("ss", "us", "is"))
        and word not in _PLURAL_EXCEPTIONS
    ):
        return word[:-1]
    return word


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip().strip("\"'`")
    text = _SEPARATORS.sub(" ", text)
    text = _DECADE.sub(r"\1s", _TRAILING.sub("", text) or text)  # "!!!" (a band) stays
    text = _SPACES.sub(" ", text).strip()
    words = text.split(" ") if text else []
    words = [
        _AND.get(word, word) if 0 < i < len(words) - 1 and min(len(words[i - 1]), len(words[i + 1])) > 1 else word
        for i, word in enumerate(words)
    ]
    return " ".join(_singular(word) for word in words)


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter added, dropped or changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    if len(a) < len(b):
        return a[start:] == b[start + 1 :]
    swapped = start + 1 < len(a) and a[start] == b[start + 1] and a[start + 1] == b[start]
    return a[start + 1 :] == b[start + 1 :] or (swapped and a[start + 2 :] == b[start + 2 :])


def close_spellings(names: Sequence[str], *, min_letters: int = 5) -> dict[str, str]:
    """Labels that look like a misspelling of a label listed before them (``names`` most used first):
    one edit apart, both of at least ``min_letters`` letters. A hint for a person, never merged
    on its own: "france" is one letter from "trance"."""
    found: dict[str, str] = {}
    # Two spellings one edit apart share a spelling with at most one letter dropped from each, so each
    # label is compared only with the earlier labels it shares one with: linear, not quadratic, in labels.
    earlier: dict[str, list[tuple[int, str]]] = {}
    for i, name in enumerate(names):
        if len(name) < min_letters:
            continue
        shortened = {name, *(name[:k] + name[k + 1 :] for k in range(len(name)))}
        matches = [(j, other) for key in shortened for j, other in earlier.get(key, ()) if one_edit_apart(name, other)]
        if matches:
            found[name] = min(matches)[1]  # the most used
        for key in shortened:
            earlier.setdefault(key, []).append((i, name))
    return found


def join_music_suffix(names: pd.Series) -> pd.Series:
    """Normalised tags with "X music" written "X" wherever X is a tag too.

    Listeners write "pop music", "world music" or "dance music" beside "pop", "world" and
    "dance" (on Last.fm's HetRec 2011 tags, 80 such pairs): where the short tag is in use,
    both are one label, named by the short one. A "X music" whose X nobody uses ("early
    music") stays as it is.
    """
    base = names.str.slice(stop=-len(_MUSIC)).str.rstrip()
    used = set(names.str.replace(" ", "", regex=False))
    joins = names.str.endswith(_MUSIC) & (base.str.len() > 0) & base.str.replace(" ", "", regex=False).isin(used)
    return names.where(~joins, base)


def tag_key(tag: str) -> str:
    """The merge key of a normalised tag: its spelling without spaces."""
    return tag.replace(" ", "")


@functools.lru_cache(maxsize=32)
def _prepared_synonyms(items: frozenset[tuple[str, str]]) -> dict[str, str]:
    prepared = {}
    for source, target in items:
        key, value = _clean(str(source)), _clean(str(target))
        if key and value:
            prepared[tag_key(key)] = value
    return prepared


def normalize_tag(text: str, *, synonyms: Mapping[str, str] | None = None) -> str | None:
    """Normalises one free-text tag.

    Steps: Unicode NFKC, case folding, surrounding spaces and quotes stripped, hyphens
    and underscores to spaces, trailing "!", "?" and "." dropped, a decade's apostrophe
    dropped ("80's"), runs of spaces collapsed, "&", "n" and "'n'" between two words of
    two letters or more written "and", a plural "-s" dropped from alphabetic words of at
    least 5 letters not ending in "ss", "us" or "is" (with a few exceptions such as
    "blues"), then ``synonyms``. Synonym keys and values are normalised the same way and
    matched without spaces, so ``{"hiphop": "rap"}`` also catches "Hip-Hop". Where "X"
    is a tag too, "X music" joins it when a catalogue's tags are counted
    (:func:`join_music_suffix`).

    Args:
        text: The tag as typed.
        synonyms: Spelling to preferred spelling, e.g. ``{"rnb": "r&b"}``.

    Returns:
        The normalised tag, or None when nothing is left (or ``text`` is not a string).

    Example:
        >>> normalize_tag("  Female_Vocals ")
        'female vocal'
        >>> normalize_tag("Hip-Hop")
        'hip hop'
        >>> normalize_tag("Rock 'n' Roll!")
        'rock and roll'
    """
    return _normalize(text, _prepared_synonyms(frozenset(synonyms.items())) if synonyms else None)


def _normalize(text: object, prepared: dict[str, str] | None) -> str | None:
    if not isinstance(text, str):
        return None
    cleaned = _clean(text)
    if not cleaned:
        return None
    return prepared.get(tag_key(cleaned), cleaned) if prepared else cleaned


def normalize_tags(texts: pd.Series, *, synonyms: Mapping[str, str] | None = None) -> pd.Series:
    """:func:`normalize_tag` over a Series, normalising each distinct text once.

    Args:
        texts: Tags as typed.
        synonyms: As for :func:`normalize_tag`.

    Returns:
        Normalised tags (missing where nothing is left), same index as ``texts``.
    """
    prepared = _prepared_synonyms(frozenset(synonyms.items())) if synonyms else None
    mapping = {text: _normalize(text, prepared) for text in texts.dropna().unique()}
    return texts.map(mapping).astype("str")


@dataclass
class TagTargets:
    """Per-song soft tag targets.

    Attributes:
        soft: Index ``track_id``, one column per vocabulary tag: the share of the song's
            tagging listeners who used the tag, in [0, 1].
        support: Distinct listeners who tagged each song (with any non-stop tag).
        agreement: Per song, the share of its tagging listeners who used its top tag.
        tag_listeners: Distinct listeners per tag over the whole catalogue, all
            non-stop tags, most used first.
    """

    soft: pd.DataFrame
    support: pd.Series
    agreement: pd.Series
    tag_listeners: pd.Series


def _tag_events(events: pd.DataFrame) -> pd.DataFrame:
    """The tag events as ``track_id``, ``listener``, ``text``."""
    missing = [name for name in ("track_id",) if name not in events.columns]
    text_column = "value_text" if "value_text" in events.columns else "value"
    if missing or text_column not in events.columns:
        raise ParameterError(f"events need columns track_id and value_text (or value); found {list(events.columns)}")
    tags = events[events["kind"] == "tag"] if "kind" in events.columns else events
    if "listener_id" in tags.columns:
        listener = tags["listener_id"].astype("str")
    else:
        listener = pd.Series(np.nan, index=tags.index, dtype="str")
    # An event without a listener id counts as its own anonymous listener.
    anonymous = pd.Series([f"{ANONYMOUS_PREFIX}{i}" for i in range(len(tags))], index=tags.index, dtype="str")
    return pd.DataFrame(
        {
            "track_id": tags["track_id"].astype("str"),
            "listener": listener.fillna(anonymous),
            "text": tags[text_column].astype("str"),
        }
    )


def _display_names(normalized: pd.Series, keys: pd.Series) -> dict[str, str]:
    """Per merge key, its most common spelling (ties: more spaces, then alphabetical)."""
    counts = pd.DataFrame({"key": keys, "name": normalized}).value_counts().reset_index(name="n")
    counts["spaces"] = counts["name"].str.count(" ")
    counts = counts.sort_values(["key", "n", "spaces", "name"], ascending=[True, False, False, True])
    return dict(counts.drop_duplicates("key")[["key", "name"]].itertuples(index=False, name=None))


def prepare_tag_votes(
    events: pd.DataFrame,
    *,
    stop_tags: frozenset[str] | Sequence[str] = DEFAULT_STOP_TAGS,
    synonyms: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Normalised, deduplicated tag uses.

    Args:
        events: Feedback events (``kind``, ``track_id``, ``listener_id``, ``value_text``).
        stop_tags: Tags to drop, compared after normalisation.
        synonyms: As for :func:`normalize_tag`.

    Returns:
        One row per (``track_id``, ``listener``, ``key``) and the display name per key.
    """
    tags = _tag_events(events)
    tags["name"] = normalize_tags(tags["text"], synonyms=synonyms)
    tags = tags[tags["name"].notna()]
    tags["name"] = join_music_suffix(tags["name"])
    tags["key"] = tags["name"].str.replace(" ", "", regex=False)
    stop_names = (normalize_tag(tag, synonyms=synonyms) for tag in stop_tags)
    stop_keys = {tag_key(name) for name in stop_names if name}
    tags = tags[~tags["key"].isin(stop_keys)]
    names = _display_names(tags["name"], tags["key"])
    votes = tags.drop_duplicates(["track_id", "listener", "key"])[["track_id", "listener", "key"]]
    return votes.reset_index(drop=True), names


def build_tag_targets(
    events: pd.DataFrame,
    *,
    stop_tags: frozenset[str] | Sequence[str] = DEFAULT_STOP_TAGS,
    synonyms: Mapping[str, str] | None = None,
    min_listeners: int = 3,
    vocabulary: Sequence[str] | None = None,
) -> TagTargets:
    """Builds per-song soft tag targets from tag events.

    A listener counts once per song and tag however often they used it; an event
    without a listener id counts as its own listener.

    Args:
        events: Feedback events as :meth:`~encore.store.Store.events` returns
            them; only ``kind == "tag"`` rows are used.
        stop_tags: Tags to drop, compared after normalisation.
        synonyms: Spelling to preferred spelling, see :func:`normalize_tag`.
        min_listeners: Without ``vocabulary``, keep tags used by at least this many
            distinct listeners over the catalogue.
        vocabulary: Fixed tag columns, in this order and named as given (matched after
            normalisation); tags never used give all-zero columns.

    Returns:
        Soft targets, support, agreement and per-tag listener counts; see :class:`TagTargets`.

    Raises:
        ParameterError: ``min_listeners`` is below 1, a vocabulary entry is empty or two
            entries normalise to the same tag, or ``events`` lacks the needed columns.

    Example:
        >>> targets = build_tag_targets(store.events(["tag"]), min_listeners=5)  # doctest: +SKIP
        >>> targets.soft.loc["t001"].nlargest(3)                                # doctest: +SKIP
    """
    if isinstance(min_listeners, bool) or not isinstance(min_listeners, (int, np.integer)) or min_listeners < 1:
        raise ParameterError(f"min_listeners={min_listeners!r} must be an integer >= 1")
    votes, names = prepare_tag_votes(events, stop_tags=stop_tags, synonyms=synonyms)
    support = votes.groupby("track_id")["listener"].nunique().rename("support")
    support.index.name = "track_id"
    per_tag = votes.groupby("key")["listener"].nunique()

    if vocabulary is None:
        chosen = per_tag[per_tag >= min_listeners]
        order = sorted(chosen.index, key=lambda key: (-chosen[key], names[key]))
        keys, columns = order, [names[key] for key in order]
    else:
        keys, columns = [], []
        for entry in vocabulary:
            name = normalize_tag(entry, synonyms=synonyms)
            if name is None:
                raise ParameterError(f"vocabulary entry {entry!r} is empty after normalisation; remove it")
            if tag_key(name) in keys:
                raise ParameterError(
                    f"vocabulary entry {entry!r} is the same tag as "
                    f"{columns[keys.index(tag_key(name))]!r} after normalisation; keep one"
                )
            keys.append(tag_key(name))
            columns.append(str(entry))

    counts = (
        votes[votes["key"].isin(keys)]
        .groupby(["track_id", "key"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=support.index, columns=keys, fill_value=0)
    )
    soft = counts.div(support, axis=0).astype(float)
    soft.columns = pd.Index(columns, name="tag")
    soft.index.name = "track_id"
    agreement = (soft.max(axis=1) if len(columns) else pd.Series(0.0, index=support.index)).rename("agreement")
    tag_listeners = per_tag.rename(index=names).sort_values(ascending=False, kind="stable").rename("listeners")
    tag_listeners.index.name = "tag"
    logger.info(
        "tag targets: %d songs, %d tags (of %d seen), median support %.1f",
        len(soft),
        len(columns),
        len(per_tag),
        float(support.median()) if len(support) else 0.0,
    )
    return TagTargets(soft=soft, support=support, agreement=agreement, tag_listeners=tag_listeners)


def tag_vocabulary(
    events: pd.DataFrame,
    *,
    stop_tags: frozenset[str] | Sequence[str] = DEFAULT_STOP_TAGS,
    synonyms: Mapping[str, str] | None = None,
    min_listeners: int = 1,
) -> pd.DataFrame:
    """The label vocabulary tags give: per merged tag, its support, agreement and raw variants.

    Args:
        events: Feedback events (``kind``, ``track_id``, ``listener_id``, ``value_text``).
        stop_tags: Tags to drop, compared after normalisation.
        synonyms: As for :func:`normalize_tag`.
        min_listeners: Keep tags used by at least this many distinct listeners.

    Returns:
        One row per tag, most listeners first: ``tag`` (display name), ``listeners``
        (distinct listeners who used it: its support), ``songs`` (songs tagged with
        it), ``agreement`` (over those songs, the mean share of a song's tagging
        listeners who used it), ``variants`` (the raw spellings merged into it, as
        ``[[text, uses], ...]``, most used first).

    Raises:
        ParameterError: ``min_listeners`` is below 1.
    """
    if isinstance(min_listeners, bool) or not isinstance(min_listeners, (int, np.integer)) or min_listeners < 1:
        raise ParameterError(f"min_listeners={min_listeners!r} must be an integer >= 1")
    columns = ["tag", "listeners", "songs", "agreement", "variants"]
    raw = _tag_events(events)
    raw["name"] = normalize_tags(raw["text"], synonyms=synonyms)
    raw = raw[raw["name"].notna()]
    raw["key"] = join_music_suffix(raw["name"]).str.replace(" ", "", regex=False)
    votes, names = prepare_tag_votes(events, stop_tags=stop_tags, synonyms=synonyms)
    if votes.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    per_tag = votes.groupby("key").agg(listeners=("listener", "nunique"), songs=("track_id", "nunique"))
    per_tag = per_tag[per_tag["listeners"] >= min_listeners]
    support = votes.groupby("track_id")["listener"].nunique()
    used = votes[votes["key"].isin(per_tag.index)].groupby(["key", "track_id"])["listener"].nunique()
    shares = used / support.reindex(used.index.get_level_values("track_id")).to_numpy()
    per_tag["agreement"] = shares.groupby(level="key").mean()
    texts = raw[raw["key"].isin(per_tag.index)].assign(text=lambda f: f["text"].str.strip())
    counts = texts.groupby(["key", "text"]).size().reset_index(name="uses")
    counts = counts.sort_values(["key", "uses", "text"], ascending=[True, False, True])
    variants: dict[str, list[list[Any]]] = {}
    for key, text, uses in zip(counts["key"].tolist(), counts["text"].tolist(), counts["uses"].tolist()):
        variants.setdefault(key, []).append([text, int(uses)])
    table = per_tag.reset_index()
    table["tag"] = table["key"].map(names)
    table["variants"] = [variants.get(key, []) for key in table["key"].tolist()]
    table = table.sort_values(["listeners", "tag"], ascending=[False, True], ignore_index=True)
    return table[columns]
