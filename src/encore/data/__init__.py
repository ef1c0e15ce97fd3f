"""Data: the manifest (targets + splits) and decoded audio for training."""

from encore.data.manifest import Manifest

__all__ = ["Manifest"]
