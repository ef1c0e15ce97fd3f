"""Explanations: per-song attribution on the log-mel, and global importances.

``explain_waveform(predictor, waveform, target=..., method="occlusion")`` returns a
:class:`SongExplanation` (``log_mel``, ``attribution``, ``segments``, ``to_dict()``,
``to_png()``); ``explain_audio(predictor, waveform)`` explains any model (a classical run,
a blend) by silencing cells of the audio it reads. :mod:`encore.explain.importance` ranks
the random forest's features and the CNN's mel bands over a split.
"""

from __future__ import annotations

from encore.explain.audio import AUDIO_METHOD, explain_audio, explain_audio_targets
from encore.explain.song import METHODS, SongExplanation, explain_waveform

__all__ = ["AUDIO_METHOD", "METHODS", "SongExplanation", "explain_audio", "explain_audio_targets", "explain_waveform"]
