"""The explanation figure: the song's log-mel with the attribution overlaid."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    from encore.explain.song import SongExplanation

__all__ = ["plot_explanation"]


def _hz_ticks(edges: np.ndarray, n_ticks: int = 6) -> tuple[np.ndarray, list[str]]:
    centres = edges.mean(axis=1)
    rows = np.unique(np.linspace(0, len(centres) - 1, min(n_ticks, len(centres))).round().astype(int))
    return rows, [f"{centres[r]:.0f}" for r in rows]


def plot_explanation(explanation: SongExplanation, *, dpi: int = 100) -> bytes:
    """Two panels: the log-mel (dB) and the same with the positive attribution in red
    over it, the top segments boxed and numbered. Returns PNG bytes.

    Drawn on a :class:`matplotlib.figure.Figure` directly (no pyplot), so it is safe in a
    server thread.
    """
    log_mel, attribution = explanation.log_mel, explanation.attribution
    n_mels, n_frames = log_mel.shape
    times = explanation.frame_seconds if explanation.frame_seconds.size == n_frames else np.arange(n_frames, dtype=float)
    step = float(times[1] - times[0]) if n_frames > 1 else 1.0
    extent = (float(times[0]), float(times[-1]) + step, -0.5, n_mels - 0.5)
    fig = Figure(figsize=(9.0, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.imshow(log_mel, origin="lower", aspect="auto", cmap="magma", extent=extent)
    top.set_title("log-mel (dB)", fontsize=10)
    bottom.imshow(log_mel, origin="lower", aspect="auto", cmap="gray", extent=extent)
    positive = np.clip(attribution, 0.0, None)
    peak = float(positive.max()) if positive.size else 0.0
    overlay = np.zeros((n_mels, n_frames, 4))
    overlay[..., 0] = 1.0
    if peak > 0:
        overlay[..., 3] = 0.85 * positive / peak
    bottom.imshow(overlay, origin="lower", aspect="auto", extent=extent)
    edges = explanation.band_edges_hz
    for rank, seg in enumerate(explanation.segments, start=1):
        if edges.shape[0] == n_mels:
            low = int(np.searchsorted(edges[:, 0], seg["f_low_hz"] - 1e-6))
            high = int(np.searchsorted(edges[:, 1], seg["f_high_hz"] + 1e-6)) - 1
        else:
            low, high = 0, n_mels - 1
        bottom.add_patch(Rectangle((seg["start_s"], low - 0.5), seg["end_s"] - seg["start_s"], high - low + 1,
                                   fill=False, edgecolor="#00e5ff", linewidth=1.2))
        bottom.text(seg["start_s"], high + 0.5, f"{rank}: {seg['share']:.0%}", color="#00e5ff", fontsize=7, va="bottom")
    bottom.set_title(
        f"{explanation.method.replace('_', ' ')} for {explanation.kind} '{explanation.target}' "
        f"(value {explanation.value:.3f}); red: raises it",
        fontsize=10,
    )
    bottom.set_xlabel("time (s)")
    if edges.shape[0] == n_mels:
        rows, labels = _hz_ticks(edges)
        for ax in (top, bottom):
            ax.set_yticks(rows, labels=labels)
            ax.set_ylabel("Hz (mel band centre)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    fig.clear()
    return buffer.getvalue()
