"""From the store's feedback to a manifest: class labels, tag targets, appeal, splits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from encore.config import LabelsConfig
from encore.data.manifest import TAG_PREFIX, Manifest
from encore.exceptions import ConfigError, ParameterError
from encore.targets.appeal import compute_appeal
from encore.targets.labels import derive_single_labels, labels_from_catalogue
from encore.targets.reliability import listener_responses, split_half_reliability
from encore.targets.splits import split_by_artist, split_keeping
from encore.targets.tags import DEFAULT_STOP_TAGS, build_tag_targets, normalize_tag

logger = logging.getLogger(__name__)

__all__ = ["build_manifest", "choose_label_set", "load_synonyms", "target_reliability"]


def load_synonyms(config: LabelsConfig, *, base_dir: str | Path | None = None) -> dict[str, str]:
    """The config's synonyms merged over those of its ``synonyms_file`` (a YAML mapping)."""
    synonyms: dict[str, str] = {}
    if config.synonyms_file:
        path = Path(config.synonyms_file)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise ConfigError(f"labels.synonyms_file {str(path)!r} does not exist; give a YAML mapping of variant: canonical")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"labels.synonyms_file {str(path)!r} must be a YAML mapping of variant: canonical")
        synonyms.update({str(k): str(v) for k, v in loaded.items()})
    synonyms.update(config.synonyms)
    return synonyms


def target_reliability(
    events: pd.DataFrame,
    tag_names: list[str],
    *,
    synonyms: dict[str, str] | None = None,
    seed: int = 0,
    n_splits: int = 50,
) -> dict[str, dict[str, float]]:
    """Split-half reliability and ceiling of the manifest's appeal and tag targets.

    Keys: ``appeal``, ``like_rate``, ``like_minus_dislike`` and ``tag:<name>`` per tag;
    targets the votes do not allow (no named listeners, fewer than three songs with two
    listeners) are left out. See :mod:`encore.targets.reliability`.
    """
    if events.empty or events["listener_id"].notna().sum() == 0:
        return {}
    responses = listener_responses(events, tags=tag_names, synonyms=synonyms)
    result = split_half_reliability(responses, n_splits=n_splits, seed=seed)
    return {name: value for name, value in result.items() if np.isfinite(value["reliability"])}


def choose_label_set(store: Any, config: LabelsConfig) -> tuple[str | None, str]:
    """The catalogue label set the class labels come from, and a sentence saying why.

    ``labels.label_set`` when given; else none when ``labels.classes`` is given (classes
    voted from listener tags); else the store's only label set, so that a folder or CSV
    just imported with ``--label-set genre`` needs no further option.

    Returns:
        ``(label_set, note)``; ``label_set`` is None for tag votes.

    Raises:
        ParameterError: ``labels.label_set`` names a set that is not stored.
        ConfigError: Neither option is given and the store holds several label sets (with
            none, there are no classes: ``(None, note)``, and the scores and tags are the targets).
    """
    sets = store.label_sets()
    stored = ", ".join(f"{name} (version {max(versions)})" for name, versions in sorted(sets.items())) or "none"
    if config.label_set:
        if config.label_set not in sets:
            raise ParameterError(
                f"labels.label_set {config.label_set!r} is not in the store; stored label sets: {stored}. "
                "Import one with `encore import SONGS --label-set NAME`"
            )
        return config.label_set, f"class labels from label set {config.label_set!r} (labels.label_set)"
    if config.classes:
        return None, "class labels voted from listener tags (labels.classes)"
    if len(sets) == 1:
        name = next(iter(sets))
        return name, (
            f"class labels from label set {name!r}, the only one stored (choose another with --set labels.label_set=NAME)"
        )
    if sets:
        raise ConfigError(
            f"the store holds several label sets: {stored}; choose one with --set labels.label_set=NAME, "
            "or vote classes from listener tags by listing labels.classes in the config"
        )
    return None, (
        "no class labels (the store holds no label set and labels.classes lists none): the listeners' scores and "
        "tags are the targets. Import a label set (`encore import SONGS --label-set NAME`) or list labels.classes "
        "for classes"
    )


def _add_note(note: str, more: str) -> str:
    """``note; more`` (``more`` alone after an empty note)."""
    return f"{note}; {more}" if note else more


def _votes_where_unlabelled(
    labels: pd.DataFrame,
    events: pd.DataFrame,
    label_names: list[str],
    tracks: pd.DataFrame,
    config: LabelsConfig,
    synonyms: dict[str, str],
    label_set: str,
) -> tuple[pd.DataFrame, int]:
    """A catalogue label set's labels, with the songs it leaves unlabelled (not in the set,
    or with several labels there) labelled by the listeners' tag votes for its classes,
    as :func:`derive_single_labels` votes them; and how many songs got a label so.

    This is how a labelling queue (``encore suggest``, imported as tag feedback) labels the
    new songs of a catalogue labelled by folders or a list: the set decides wherever it has
    one label, the votes only where it has none.
    """
    if events.empty or len(label_names) < 2:
        return labels, 0
    open_songs = set(tracks["track_id"]) - set(labels.loc[labels["label"].notna(), "track_id"])
    voted = derive_single_labels(
        events[events["track_id"].isin(open_songs)],
        label_names,
        synonyms=synonyms,
        min_margin=config.min_margin,
        min_votes=config.min_votes,
        weight_listeners=config.weight_listeners,
    )
    thin = int((voted["label"].isna() & (voted["n_votes"] < config.min_votes)).sum())
    if thin:
        logger.warning(
            "%d song(s) that label set %r leaves unlabelled have tags naming a class from fewer than labels.min_votes=%d "
            "listeners, so they stay unlabelled; with one labeller a song, rebuild with --set labels.min_votes=1",
            thin,
            label_set,
            config.min_votes,
        )
    voted = voted[voted["label"].notna()]
    if voted.empty:
        return labels, 0
    kept = labels[~labels["track_id"].isin(voted["track_id"])]
    return pd.concat([kept, voted[labels.columns]], ignore_index=True), len(voted)


def build_manifest(
    store: Any, config: LabelsConfig, *, base_dir: str | Path | None = None, previous: Manifest | None = None
) -> Manifest:
    """Turn the store's tracks and feedback into training targets and artist-safe splits.

    Args:
        store: An open :class:`encore.store.Store`.
        config: How labels, tags, appeal and splits are made.
        base_dir: Where a relative ``synonyms_file`` is looked up.
        previous: The manifest this one replaces; made with the same split settings, its
            songs keep their splits and only new songs are dealt (:func:`split_keeping`).

    Returns:
        The manifest (not yet written).
    """
    tracks = store.tracks()
    if tracks.empty:
        raise ParameterError("the store has no tracks; import songs first with `encore import`")
    events = store.events()
    synonyms = load_synonyms(config, base_dir=base_dir)
    stop_tags = frozenset(config.stop_tags) if config.stop_tags is not None else DEFAULT_STOP_TAGS

    label_set, label_note = choose_label_set(store, config)
    voted_songs = 0
    if label_set:
        labels = labels_from_catalogue(store, label_set)
        label_names = sorted(labels["label"].dropna().unique())
        labels, voted_songs = _votes_where_unlabelled(labels, events, label_names, tracks, config, synonyms, label_set)
        if voted_songs:
            label_note = _add_note(
                label_note,
                f"{voted_songs} song(s) the set leaves unlabelled take the class their listeners' tags vote for "
                f"(an `encore suggest` queue imported as feedback, say; labels.min_votes={config.min_votes})",
            )
    elif not config.classes:  # scores and tags only: the listeners' feedback is the whole target
        label_names = []
        labels = pd.DataFrame(columns=["track_id", "label", "confidence", "margin", "n_votes"])
    else:
        label_names = [normalize_tag(c, synonyms=synonyms) or c for c in config.classes]
        labels = derive_single_labels(
            events,
            label_names,
            synonyms=synonyms,
            min_margin=config.min_margin,
            min_votes=config.min_votes,
            weight_listeners=config.weight_listeners,
        )
        if labels.empty:
            logger.warning("no tag events name any of the classes %s", label_names)

    frame = tracks[["track_id", "path", "artist", "title", "duration"]].copy()
    without_audio = int(frame["path"].isna().sum())
    if without_audio:  # uploads the service kept no audio for, Spotify or Last.fm items: nothing to train on
        frame = frame[frame["path"].notna()].reset_index(drop=True)
        if frame.empty:
            raise ParameterError(
                f"none of the store's {without_audio} items has an audio file (Spotify or Last.fm items, songs the "
                "service stored without their audio), so there is nothing to train on; import the songs' audio with "
                "`encore import FOLDER`"
            )
        label_note = _add_note(
            label_note,
            f"{without_audio} stored item(s) without an audio file are left out of the manifest (their feedback "
            "still counts toward the catalogue's appeal prior and the listeners' reliability)",
        )
    frame = frame.merge(
        labels[["track_id", "label", "confidence", "margin", "n_votes"]].rename(
            columns={"confidence": "label_confidence", "margin": "label_margin", "n_votes": "label_votes"}
        ),
        on="track_id",
        how="left",
    )
    frame["label"] = frame["label"].astype(object).where(frame["label"].notna(), None)

    durations = {t: float(d) for t, d in zip(tracks["track_id"], tracks["duration"]) if pd.notna(d)}
    appeal = compute_appeal(events, durations=durations, skip_ms=config.skip_ms, skip_fraction=config.skip_fraction)
    frame = frame.merge(appeal[["track_id", "appeal", "appeal_sd", "n_events", "n_listeners"]], on="track_id", how="left")

    tag_names: list[str] = []
    tag_events = events[events["kind"] == "tag"] if not events.empty else events
    if config.max_tags > 0 and not tag_events.empty:
        tag_targets = build_tag_targets(
            tag_events,
            stop_tags=stop_tags | set(label_names),
            synonyms=synonyms,
            min_listeners=config.min_tag_listeners,
        )
        ranked = tag_targets.tag_listeners.sort_values(ascending=False)
        tag_names = [t for t in ranked.index if t in tag_targets.soft.columns][: config.max_tags]
        soft = tag_targets.soft.reindex(columns=tag_names)
        soft.columns = [TAG_PREFIX + t for t in tag_names]
        frame = frame.merge(soft, left_on="track_id", right_index=True, how="left")
        frame = frame.merge(tag_targets.support.rename("tag_support"), left_on="track_id", right_index=True, how="left")

    # no like, rating, play or skip at all: no appeal to learn, so no score head (and no empty appeal metric)
    scores = ["appeal"] if frame["appeal"].notna().any() else []
    if not label_names and not scores and not tag_names:
        raise ConfigError(
            "nothing to learn: the store holds no label set, labels.classes lists none, and no song has likes, "
            "ratings, plays, skips or enough tags. Import songs with labels (`encore import SONGS --label-set NAME`, "
            "from a label column or one sub-folder per label), vote classes from listener tags by listing "
            "labels.classes in the config, or import listener feedback (`encore feedback import`)"
        )
    frame["artist"] = frame["artist"].astype(object).where(frame["artist"].notna(), None)
    split_settings: dict[str, Any] = {
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
        "seed": config.split_seed,
    }
    if previous is not None and previous.info.get("split_settings") == split_settings and "split" in previous.frame:
        frame["split"], kept = split_keeping(frame, previous.frame[["track_id", "split"]], **split_settings)
        label_note = _add_note(
            label_note,
            f"{kept} song(s) kept their split from the manifest before and new songs were dealt on their own, so no "
            "model trained before is tested on songs it trained on (another labels.split_seed deals all again)",
        )
    else:
        frame["split"] = split_by_artist(frame, **split_settings)
    reliability = target_reliability(events, tag_names, synonyms=synonyms, seed=config.split_seed)
    info = {
        "events": int(len(events)),
        "listeners": int(events["listener_id"].nunique()) if not events.empty else 0,
        "label_source": (f"catalogue:{label_set}" + (f" + listener tags ({voted_songs})" if voted_songs else ""))
        if label_set
        else ("listener tags" if label_names else "none"),
        "label_note": label_note,
        "songs_without_artist": int(frame["artist"].isna().sum()),
        "items_without_audio": without_audio,
        "unlabelled": int(frame["label"].isna().sum()),
        "mean_label_confidence": float(np.nanmean(frame["label_confidence"])) if frame["label_confidence"].notna().any() else 0.0,
        "reliability": reliability,
        "split_settings": split_settings,
    }
    logger.info(
        "manifest: %d songs, %d labelled, %d tags, splits %s",
        len(frame),
        int(frame["label"].notna().sum()),
        len(tag_names),
        frame["split"].value_counts().to_dict(),
    )
    return Manifest(frame=frame, label_names=list(label_names), tag_names=tag_names, regression_names=scores, info=info)
