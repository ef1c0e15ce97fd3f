"""Song targets from listener feedback, and the manifest built from them (no torch here).

:func:`build_tag_targets` turns tag votes into soft per-song targets (:mod:`.tags`),
:func:`derive_single_labels` one class per song (:mod:`.labels`), :func:`compute_appeal`
a listener-appeal score with its uncertainty (:mod:`.appeal`);
:func:`split_half_reliability` says how far they can be trusted (:mod:`.reliability`);
:func:`split_by_artist` and :func:`kfold_by_artist` split songs with no artist on two
sides (:mod:`.splits`). :func:`build_manifest` puts them together from an open store
into the :class:`~encore.data.manifest.Manifest` training reads (:mod:`.build`).
"""

from encore.targets.appeal import appeal_evidence, compute_appeal, score_appeal, skip_rates
from encore.targets.build import build_manifest, choose_label_set, load_synonyms, target_reliability
from encore.targets.labels import derive_single_labels, labels_from_catalogue
from encore.targets.reliability import listener_responses, song_rates, split_half_reliability
from encore.targets.splits import kfold_by_artist, split_by_artist
from encore.targets.tags import DEFAULT_STOP_TAGS, TagTargets, build_tag_targets, normalize_tag, tag_vocabulary

__all__ = [
    "DEFAULT_STOP_TAGS",
    "TagTargets",
    "appeal_evidence",
    "build_manifest",
    "build_tag_targets",
    "choose_label_set",
    "compute_appeal",
    "derive_single_labels",
    "kfold_by_artist",
    "labels_from_catalogue",
    "listener_responses",
    "load_synonyms",
    "normalize_tag",
    "score_appeal",
    "skip_rates",
    "song_rates",
    "split_by_artist",
    "split_half_reliability",
    "tag_vocabulary",
    "target_reliability",
]
