"""Published models converted into ordinary encore checkpoints, and the models folder.

``encore pretrained convert NAME`` writes ``<models folder>/NAME/checkpoint.pt`` once;
everything that takes a run then takes ``pretrained:NAME`` (:func:`resolve_run`).
Nothing here imports TensorFlow or downloads anything; only the conversion reads the
original checkpoints, from a package the user installed.
"""

from encore.pretrained.catalogue import PRETRAINED, PretrainedSpec, pretrained_spec
from encore.pretrained.store import PRETRAINED_PREFIX, default_models_dir, pretrained_path, resolve_run

__all__ = [
    "PRETRAINED",
    "PRETRAINED_PREFIX",
    "PretrainedSpec",
    "default_models_dir",
    "pretrained_path",
    "pretrained_spec",
    "resolve_run",
]
