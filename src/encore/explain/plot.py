"""The explanation figure: the song's log-mel with the attribution overlaid."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    from encore.explain.song import SongExplanation

__all__ = ["draw_explanation", "format_hz_range", "plot_explanation"]

_MAX_RANGE_LABELS = 16
"""Up to this many grid bands the axis names each band's range; beyond, only band edges."""


def format_hz_range(low: float, high: float) -> str:
    """``"418-789 Hz"``: whole hertz, so a band's upper edge reads exactly as the next one's lower edge."""
    return f"{low:.0f}-{high:.0f} Hz"


def _band_rows(explanation: SongExplanation) -> list[tuple[int, int]]:
    """First and last mel row of each band of the explanation's grid."""
    from encore.explain.attribution import grid_slices

    n_mels = explanation.log_mel.shape[0]
    _, bands = grid_slices(1, n_mels, n_segments=1, n_bands=max(1, explanation.n_bands))
    return [(b.start, b.stop - 1) for b in bands]


def _segment_rows(edges: np.ndarray, seg: dict, n_mels: int) -> tuple[int, int]:
    """The mel rows a ranked segment covers, from its edges in Hz."""
    if edges.shape[0] != n_mels:
        return 0, n_mels - 1
    low = int(np.clip(np.searchsorted(edges[:, 0], seg["f_low_hz"] - 0.5), 0, n_mels - 1))
    high = int(np.clip(np.searchsorted(edges[:, 1], seg["f_high_hz"] - 0.5), low, n_mels - 1))
    return low, high


def _label_bands(ax, explanation: SongExplanation) -> None:
    """Name each grid band's frequency range on the y axis (ranges that do not overlap)."""
    edges = explanation.band_edges_hz
    n_mels = explanation.log_mel.shape[0]
    if edges.shape[0] != n_mels:
        ax.set_ylabel("mel band")
        return
    rows = _band_rows(explanation)
    ax.set_yticks([start - 0.5 for start, _ in rows] + [n_mels - 0.5], minor=True)
    ax.tick_params(axis="y", which="minor", length=6)
    if len(rows) <= _MAX_RANGE_LABELS:
        ax.set_yticks(
            [(start + stop) / 2.0 for start, stop in rows],
            labels=[format_hz_range(edges[start, 0], edges[stop, 1]) for start, stop in rows],
            fontsize=8,
        )
        ax.tick_params(axis="y", which="major", length=0)
        ax.set_ylabel("mel band")
    else:
        ticks = [start - 0.5 for start, _ in rows][:: max(1, len(rows) // 8)] + [n_mels - 0.5]
        labels = [f"{edges[int(t + 0.5), 0]:.0f}" if t < n_mels - 1 else f"{edges[-1, 1]:.0f}" for t in ticks]
        ax.set_yticks(ticks, labels=labels, fontsize=8)
        ax.set_ylabel("Hz (band edges)")


def draw_explanation(explanation: SongExplanation) -> Figure:
    """Two panels: the log-mel (dB) and the same with the positive attribution in red over
    it, the top segments boxed and numbered, and beside them the list of those segments
    (rank, share, time span, band). Each axis names the bands of the explanation's grid
    by their frequency ranges, which share edges and never overlap.

    Drawn on a :class:`matplotlib.figure.Figure` directly (no pyplot), so it is safe in a
    server thread.
    """
    log_mel, attribution = explanation.log_mel, explanation.attribution
    n_mels, n_frames = log_mel.shape
    times = explanation.frame_seconds if explanation.frame_seconds.size == n_frames else np.arange(n_frames, dtype=float)
    step = float(times[1] - times[0]) if n_frames > 1 else 1.0
    extent = (float(times[0]), float(times[-1]) + step, -0.5, n_mels - 0.5)
    fig = Figure(figsize=(11.0, 6.4))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.25})
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
    lines = ["top segments", "(share of the positive", " attribution)", ""]
    box = bottom.get_position()  # axes size in points, to fit each number inside its box
    points_per_row = box.height * fig.get_figheight() * 72.0 / n_mels
    points_per_second = box.width * fig.get_figwidth() * 72.0 / (extent[1] - extent[0])
    for rank, seg in enumerate(explanation.segments, start=1):
        low, high = _segment_rows(edges, seg, n_mels)
        bottom.add_patch(
            Rectangle(
                (seg["start_s"], low - 0.5),
                seg["end_s"] - seg["start_s"],
                high - low + 1,
                fill=False,
                edgecolor="#00e5ff",
                linewidth=1.4,
            )
        )
        fontsize = min(
            8.0,
            0.75 * (high - low + 1) * points_per_row,
            0.9 * (seg["end_s"] - seg["start_s"]) * points_per_second / len(str(rank)),
        )
        bottom.text(
            (seg["start_s"] + seg["end_s"]) / 2.0,
            (low + high) / 2.0,
            str(rank),
            color="white",
            fontsize=max(fontsize, 4.0),
            fontweight="bold",
            ha="center",
            va="center",
            clip_on=True,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "black", "alpha": 0.6, "linewidth": 0},
        )
        lines.append(f"{rank}  {seg['share']:6.1%}  {seg['start_s']:.2f}-{seg['end_s']:.2f} s")
        lines.append(f"   {format_hz_range(seg['f_low_hz'], seg['f_high_hz'])}")
    if not explanation.segments:
        lines.append("none: no cell raises it")
    bottom.text(
        1.02,
        1.0,
        "\n".join(lines),
        transform=bottom.transAxes,
        ha="left",
        va="top",
        fontsize=8,
        family="monospace",
        gid="segment-list",
    )
    bottom.set_title(
        f"{explanation.method.replace('_', ' ')} for {explanation.kind} '{explanation.target}' "
        f"(value {explanation.value:.3f}); red: raises it",
        fontsize=10,
    )
    bottom.set_xlabel("time (s)")
    for ax in (top, bottom):
        _label_bands(ax, explanation)
    return fig


def plot_explanation(explanation: SongExplanation, *, dpi: int = 100) -> bytes:
    """:func:`draw_explanation` as PNG bytes (the whole figure, labels and list included)."""
    fig = draw_explanation(explanation)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15, facecolor="white")
    fig.clear()
    return buffer.getvalue()
