"""Figures of the evaluation report, drawn with matplotlib's object API and returned as PNG bytes.

Plots are drawn on :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``: that needs no backend switch, keeps no global figure registry to close, and
is safe to call from a server thread.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "figure_html",
    "learning_series",
    "plot_appeal",
    "plot_confusion",
    "plot_history",
    "plot_importance",
    "plot_per_class",
    "plot_reliability",
]

_DPI = 100


def _plain(text: Any) -> str:
    """Text for matplotlib with mathtext switched off (a ``$`` in a label name is literal)."""
    return str(text).replace("$", r"\$")


def _finite(x: Any) -> bool:
    import math

    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(float(x))


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", facecolor="white")
    fig.clear()
    return buf.getvalue()


def figure_html(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(str(alt), quote=True)}">'
        f"<figcaption>{html.escape(str(caption), quote=True)}</figcaption></figure>"
    )


def plot_confusion(cm: np.ndarray, label_names: Sequence[str]) -> bytes:
    k = cm.shape[0]
    side = float(np.clip(1.5 + 0.55 * k, 4.0, 12.0))
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    support = cm.sum(axis=1, keepdims=True)
    fraction = np.divide(cm, support, out=np.zeros(cm.shape, dtype=float), where=support > 0)
    image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    names = [_plain(n) for n in label_names]
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        fontsize = 10 if k <= 10 else 7
        for i in range(k):
            for j in range(k):
                colour = "white" if fraction[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color=colour, fontsize=fontsize)
    return _png(fig)


def plot_per_class(per_class: Sequence[Mapping]) -> bytes:
    k = len(per_class)
    fig = Figure(figsize=(float(np.clip(1.5 + 0.8 * k, 5.0, 14.0)), 3.8))
    ax = fig.add_subplot()
    x = np.arange(k)
    width = 0.27
    for offset, key, colour in ((-width, "precision", "#4c72b0"), (0.0, "recall", "#dd8452"), (width, "f1", "#55a868")):
        ax.bar(x + offset, [float(row.get(key) or 0.0) for row in per_class], width, label=key, color=colour)
    ax.set_xticks(
        x,
        labels=[_plain(row.get("label", i)) for i, row in enumerate(per_class)],
        rotation=30,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.14), ncol=3, frameon=False)
    return _png(fig)


def plot_reliability(reliability: Mapping) -> bytes:
    counts = np.asarray(reliability.get("bin_count", []), dtype=float)
    n_bins = counts.size
    edges = np.asarray(reliability.get("bin_edges") or np.linspace(0.0, 1.0, n_bins + 1), dtype=float)
    accuracy = np.array([np.nan if a is None else float(a) for a in reliability.get("bin_accuracy", [])])
    confidence = np.array([np.nan if c is None else float(c) for c in reliability.get("bin_confidence", [])])
    centres, widths = (edges[:-1] + edges[1:]) / 2.0, np.diff(edges)
    fig = Figure(figsize=(5.0, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    filled = np.isfinite(accuracy)
    top.bar(centres[filled], accuracy[filled], widths[filled] * 0.95, color="#4c72b0", edgecolor="#2b4a7a", label="accuracy")
    top.plot([0, 1], [0, 1], linestyle="--", color="#888888", label="perfect calibration")
    top.plot(confidence[filled], accuracy[filled], "o", color="#dd8452", markersize=4, label="mean confidence")
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8, frameon=False)
    bottom.bar(centres, counts, widths * 0.95, color="#999999")
    bottom.set_xlabel("top-class probability")
    bottom.set_ylabel("songs")
    return _png(fig)


def learning_series(history: Sequence[Mapping]) -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
    epochs = [float(row.get("epoch", i + 1)) for i, row in enumerate(history)]
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys and k != "epoch" and _finite(row[k]))
    losses, scores = {}, {}
    for key in keys:
        values = [float(row[key]) if _finite(row.get(key)) else np.nan for row in history]
        if "loss" in key:
            losses[key] = values
        elif key.startswith(("train_", "val_")):
            scores[key] = values
    return epochs, losses, scores


def plot_history(epochs: Sequence[float], losses: Mapping[str, list[float]], scores: Mapping[str, list[float]]) -> bytes:
    panels = [(title, series) for title, series in (("loss", losses), ("score", scores)) if series]
    fig = Figure(figsize=(5.0 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, series) in zip(axes, panels):
        for key, values in series.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=_plain(key))
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def plot_appeal(observed: np.ndarray, predicted: np.ndarray) -> bytes:
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.add_subplot()
    ax.scatter(observed, predicted, s=18, alpha=0.7, color="#4c72b0", edgecolors="none")
    low = float(min(observed.min(), predicted.min()))
    high = float(max(observed.max(), predicted.max()))
    pad = 0.05 * (high - low) if high > low else 0.5
    ax.plot([low - pad, high + pad], [low - pad, high + pad], linestyle="--", color="#888888", label="y = x")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("observed appeal")
    ax.set_ylabel("predicted appeal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _png(fig)


def plot_importance(rows: Sequence[tuple[str, float]], *, xlabel: str = "importance") -> bytes:
    fig = Figure(figsize=(6.5, float(np.clip(0.32 * len(rows) + 1.0, 2.0, 8.0))))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.barh(y, [v for _, v in rows], color="#55a868")
    ax.set_yticks(y, labels=[_plain(name) for name, _ in rows])
    ax.invert_yaxis()
    ax.axvline(0.0, color="#444444", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
