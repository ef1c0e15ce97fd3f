"""The published models encore can convert: where each comes from and what it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from encore.exceptions import ParameterError

__all__ = ["MSD_TAGS", "MTT_TAGS", "PRETRAINED", "PretrainedSpec", "pretrained_spec"]

# The 50 tags of each training set, in the output order of the shipped checkpoints
# (musicnn/configuration.py, copied so that listing and predicting need no TensorFlow).
MTT_TAGS = (
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
)
MSD_TAGS = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
)

MUSICNN_PAPER = (
    'J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", '
    "ISMIR 2019 late-breaking/demo, arXiv:1909.06654"
)


@dataclass(frozen=True)
class PretrainedSpec:
    """One convertible model.

    Attributes:
        name: The name users type (``pretrained:NAME``).
        package: The installed distribution holding the original weights.
        checkpoint: The checkpoint folder inside that package.
        backbone: The registered encore backbone it maps onto.
        backbone_kwargs: Its arguments.
        tag_names: The output tags, in order.
        dataset: What it was trained on.
        description: One line for ``encore pretrained list``.
    """

    name: str
    package: str
    checkpoint: str
    backbone: str
    tag_names: tuple[str, ...]
    dataset: str
    description: str
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    paper: str = MUSICNN_PAPER
    licence: str = "ISC"
    url: str = "https://github.com/jordipons/musicnn"


PRETRAINED: dict[str, PretrainedSpec] = {
    spec.name: spec
    for spec in (
        PretrainedSpec(
            "musicnn-msd",
            "musicnn",
            "MSD_musicnn",
            "musicnn",
            MSD_TAGS,
            "Million Song Dataset (last.fm tags)",
            "musicnn tagger, 50 MSD tags (genres, decades, moods); 200-d embedding",
        ),
        PretrainedSpec(
            "musicnn-mtt",
            "musicnn",
            "MTT_musicnn",
            "musicnn",
            MTT_TAGS,
            "MagnaTagATune",
            "musicnn tagger, 50 MagnaTagATune tags (instruments, genres incl. classical); 200-d embedding",
        ),
        PretrainedSpec(
            "musicnn-msd-vgg",
            "musicnn",
            "MSD_vgg",
            "musicnn_vgg",
            MSD_TAGS,
            "Million Song Dataset (last.fm tags)",
            "musicnn's VGG-like baseline, 50 MSD tags; 256-d embedding",
        ),
        PretrainedSpec(
            "musicnn-mtt-vgg",
            "musicnn",
            "MTT_vgg",
            "musicnn_vgg",
            MTT_TAGS,
            "MagnaTagATune",
            "musicnn's VGG-like baseline, 50 MagnaTagATune tags; 256-d embedding",
        ),
    )
}


def pretrained_spec(name: str) -> PretrainedSpec:
    """The spec of ``name``, or a :class:`ParameterError` listing the known names."""
    try:
        return PRETRAINED[name]
    except KeyError:
        raise ParameterError(
            f"unknown pretrained model {name!r}; choose one of {sorted(PRETRAINED)} (see `encore pretrained list`)"
        ) from None
