"""Explanations: per-song attribution on the log-mel, and global importances.

``explain_waveform(predictor, waveform, target=..., method="occlusion")`` returns a
:class:`SongExplanation` (``log_mel``, ``attribution``, ``segments``, ``to_dict()``,
``to_png()``). :mod:`encore.explain.importance` ranks the random forest's features and
the CNN's mel bands over a split.
"""

from __future__ import annotations

from encore.explain.song import METHODS, SongExplanation, explain_waveform

__all__ = ["METHODS", "SongExplanation", "explain_waveform"]
