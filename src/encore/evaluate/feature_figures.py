"""The classical baseline's importances grouped by feature family, for the report.

A feature's family (``mfcc``, ``rhythm``, ``tonnetz`` ...) comes from the row itself
(``"family"``, from the model card) or from :func:`encore.features.handcrafted.feature_family`.
Two panels: each family's summed importance, and the highest features coloured by family,
so a reader sees both which kinds of feature matter and which single ones.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from encore.evaluate.figures import _png

__all__ = ["family_rows", "plot_family_importance", "selection_table_rows"]

_PALETTE = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
    "#2f4b7c",
    "#a05195",
    "#f95d6a",
)


def family_rows(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, float]]:
    """``(feature, family, importance)`` for importance rows, finite values only, highest first."""
    from encore.features.handcrafted import feature_family

    out = []
    for row in rows:
        value = row.get("importance")
        if value is None or not np.isfinite(float(value)):
            continue
        name = str(row.get("feature"))
        out.append((name, str(row.get("family") or feature_family(name)), float(value)))
    return sorted(out, key=lambda r: -r[2])


def plot_family_importance(rows: Sequence[tuple[str, str, float]], *, top: int = 25, xlabel: str = "importance") -> bytes:
    """Family totals (left) and the ``top`` features coloured by family (right), as PNG bytes."""
    families = list(dict.fromkeys(family for _, family, _ in rows))
    totals = {f: sum(v for _, fam, v in rows if fam == f) for f in families}
    families.sort(key=lambda f: -totals[f])
    colour = {f: _PALETTE[i % len(_PALETTE)] for i, f in enumerate(families)}
    shown = list(rows[:top])
    fig = Figure(
        figsize=(
            11.0,
            float(np.clip(0.3 * max(len(shown), len(families)) + 1.4, 3.0, 9.0)),
        )
    )
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4], "wspace": 0.7})
    y = np.arange(len(families))
    left.barh(y, [totals[f] for f in families], color=[colour[f] for f in families])
    left.set_yticks(y, labels=[f.replace("_", " ") for f in families])
    left.invert_yaxis()
    left.set_xlabel(f"{xlabel}, summed over the family")
    left.grid(axis="x", alpha=0.3)
    y = np.arange(len(shown))
    right.barh(y, [v for _, _, v in shown], color=[colour[f] for _, f, _ in shown])
    right.set_yticks(y, labels=[name.replace("$", r"\$") for name, _, _ in shown])
    right.invert_yaxis()
    right.set_xlabel(xlabel)
    right.grid(axis="x", alpha=0.3)
    right.set_title(f"highest {len(shown)} features, coloured by family", fontsize=9)
    return _png(fig)


def selection_table_rows(
    selection: Mapping[str, Mapping[str, Any]],
) -> list[list[tuple[str, bool]]]:
    """Table rows (head, kept of all, the kept features by family) for the report's selection table."""
    from encore.features.handcrafted import feature_family

    rows = []
    for head, entry in selection.items():
        by_family: dict[str, list[str]] = {}
        for name in entry.get("kept", []):
            by_family.setdefault(feature_family(str(name)), []).append(str(name))
        listed = "; ".join(f"<b>{html.escape(f)}</b>: {html.escape(', '.join(names))}" for f, names in by_family.items())
        rows.append(
            [
                (html.escape(str(head)), False),
                (f"{entry.get('n_kept', '–')} of {entry.get('n_features', '–')}", True),
                (listed, False),
            ]
        )
    return rows
