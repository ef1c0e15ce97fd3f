"""``report.html`` and ``report.json`` of a cross-validation, in `encore evaluate`'s style.

The page is self-contained like :mod:`encore.evaluate.report`'s (same stylesheet, tables
and inlined PNG figures; its section builders are reused): the folds, the headline
figures over seeds, each target's Spearman next to its reliability ceiling, the paired
comparisons, every fold's figures, and for each model the pooled held-out predictions of
its first seed as `encore evaluate` shows a test split (confusion matrix, per class,
appeal scatter, tags).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from encore.evaluate.report import (
    _comparison_section,
    _e,
    _fmt,
    _fmt_ci,
    _model_section,
    _table,
    _write_page,
    to_jsonable,
)

__all__ = ["metric_label", "write_cv_report"]


def metric_label(key: str) -> str:
    """A headline key as the report names it: ``spearman:tag:calm`` -> ``calm Spearman``."""
    if key.startswith("spearman:tag:"):
        return f"{key[len('spearman:tag:') :]} Spearman"
    if key.startswith("spearman:"):
        return f"{key[len('spearman:') :]} Spearman"
    return {"mean_tag_spearman": "tags' mean Spearman", "macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy"}.get(
        key, key
    )


def _mean_sd(spread: Mapping | None) -> str:
    if not spread or spread.get("mean") is None:
        return "–"
    sd = spread.get("sd")
    return f"{_fmt(spread['mean'], 3)} ± {_fmt(sd, 3)}" if sd is not None else _fmt(spread["mean"], 3)


def _validation(plan: Mapping) -> str:
    users = [n for n, m in (plan.get("models") or {}).items() if m.get("uses_validation")]
    share = plan.get("val_fraction", "–")
    return f"{share} ({', '.join(users)})" if users else f"{share} (no model here reads one)"


def _data_section(report: Mapping) -> str:
    data = report["data"]
    plan = report.get("plan") or {}
    rows = [
        [(_e(k), False), (_e(v), True)]
        for k, v in (
            ("songs", data["songs"]),
            ("labelled", data["labelled"]),
            ("artist groups", data["artist_groups"]),
            ("songs without an artist (each its own group)", data["songs_without_artist"]),
            ("folds", plan.get("n_folds", len(data["folds"]))),
            ("fold seed", plan.get("fold_seed", "–")),
            ("validation share inside training folds", _validation(plan)),
            ("training seeds", ", ".join(str(s) for s in plan.get("seeds", []))),
            ("manifest", (plan.get("manifest") or {}).get("path", "–")),
        )
    ]
    names = data["label_names"]
    fold_rows = [
        [(_e(f["fold"]), True), (_e(f["songs"]), True), (_e(f["artist_groups"]), True)]
        + [(_e(f["labels"].get(n, 0)), True) for n in names]
        for f in data["folds"]
    ]
    note = (
        "<p class='note'>Folds are dealt by artist (no artist in two folds) and stratified by label; every model "
        "and seed is trained and tested on the same folds. A model that reads a validation split (early stopping, "
        "calibration) gets the share above of its training songs, dealt the same way; the others train on all of "
        "them.</p>"
    )
    return (
        "<section id='data'><h2>Data and folds</h2>\n"
        + note
        + _table(["item", "value"], rows)
        + _table(["fold", "songs", "artist groups", *names], fold_rows, caption="songs per fold and class")
        + "</section>"
    )


def _headline_section(report: Mapping) -> str:
    models = report["models"]
    keys: list[str] = []
    for m in models.values():
        keys += [k for k in m["headline_keys"] if k not in keys and not k.startswith("spearman:tag:")]
    rows: list[list[tuple[str, bool]]] = []
    for name, m in models.items():
        seeds = list(m["seeds"])
        first = m["seeds"][seeds[0]]
        cls = first.get("classification") or {}
        row = [
            (f"<a href='#model-{len(rows) + 1}'>{_e(name)}</a> ({_e(m.get('kind') or '–')})", False),
            (_e(len(seeds)), True),
            (_e(first["n"]), True),
            (_fmt_ci(cls.get("accuracy"), 3), True),
        ]
        row += [(_mean_sd(m["over_seeds"].get(k)), True) for k in keys]
        spread = m["train_seconds"]
        row.append((f"{spread['mean']:.0f} ({min(spread['values']):.0f}–{max(spread['values']):.0f})", True))
        rows.append(row)
    headers = [
        "model (kind)",
        "seeds",
        "songs",
        "accuracy, first seed [95 % CI]",
        *[metric_label(k) for k in keys],
        "train s per fold, mean (range)",
    ]
    return (
        "<section id='headline'><h2>Headline metrics</h2>\n<p class='note'>Each model's held-out predictions pooled "
        "over the folds (every song predicted once per seed by a model that never trained on it); the mean and "
        "standard deviation (mean ± sd) of each figure over the training seeds, and the first seed's accuracy with "
        "its bootstrap interval over songs. Train time is the fit alone. A classical model's includes the features "
        "of songs not yet in the workspace cache, and a pretrained probe's the embeddings of songs not yet in the "
        "embedding cache, so a model's first fold is the slow one.</p>\n<div style='overflow-x: auto'>"
        + _table(headers, rows)
        + "</div></section>"
    )


def _targets_section(report: Mapping) -> str:
    models = report["models"]
    ceilings = report.get("ceilings") or {}
    targets: list[str] = []
    for m in models.values():
        named = [k.removeprefix("spearman:") for k in m["headline_keys"] if k.startswith("spearman:")]
        targets += [t for t in named if t not in targets]
    if not targets:
        return ""
    rows = []
    for t in targets:
        ceiling = ceilings.get(t) or {}
        row = [(_e(t.removeprefix("tag:")), False)]
        row += [(_mean_sd(m["over_seeds"].get(f"spearman:{t}")), True) for m in models.values()]
        row += [(_fmt(ceiling.get("reliability"), 2), True), (_fmt(ceiling.get("ceiling"), 2), True)]
        rows.append(row)
    return (
        "<section id='targets'><h2>Scores and tags against their ceilings</h2>\n<p class='note'>Spearman of each "
        "predicted score or tag probability with the listeners' value, pooled over folds (mean ± sd over seeds). "
        "The ceiling is the square root of the target's split-half reliability (from the manifest): no model can "
        "correlate with targets this noisy much beyond it.</p>\n"
        + _table(["target", *models, "reliability", "ceiling"], rows)
        + "</section>"
    )


def _novelty_section(report: Mapping) -> str:
    from encore.evaluate.cv_summary import cv_novelty_sentence

    lines = [
        f"<li>{_e(name)}: {_e(cv_novelty_sentence(m['novelty']))}</li>"
        for name, m in report["models"].items()
        if m.get("novelty")
    ]
    if not lines:
        return ""
    return (
        "<section id='novelty'><h2>Novelty false alarms</h2>\n<p class='note'>How often each model's novelty "
        "threshold, fitted in its own fold, flagged the held-out songs. They are the catalogue's own songs, so every "
        "flag is a false alarm, and the share should sit near what the threshold expects. Models not listed give no "
        "novelty score: the classical models have none.</p>\n<ul>" + "".join(lines) + "</ul></section>"
    )


def _folds_section(report: Mapping) -> str:
    parts = [
        "<section id='folds'><h2>Per fold</h2><p class='note'>Each fold's held-out songs scored on their own (point values).</p>"
    ]
    for name, m in report["models"].items():
        keys = [k for k in m["headline_keys"] if not k.startswith("spearman:tag:")]
        rows = [
            [(_e(f["seed"]), True), (_e(f["fold"]), True), (_e(f["n"]), True)]
            + [(_fmt(f.get(k), 3), True) for k in keys]
            + [(_fmt(f.get("train_seconds"), 0), True)]
            for f in m["folds"]
        ]
        parts.append(f"<h3>{_e(name)}</h3>\n" + _table(["seed", "fold", "songs", *map(metric_label, keys), "train s"], rows))
    parts.append("</section>")
    return "\n".join(parts)


def _evaluate_style_result(name: str, m: Mapping, ceilings: Mapping) -> dict[str, Any]:
    """The first seed's pooled predictions as an `encore evaluate` result, for its model section."""
    seed = next(iter(m["seeds"]))
    pooled = m["seeds"][seed]
    scores = {k: {**v, "reliability": ceilings.get(k)} for k, v in (pooled.get("scores") or {}).items()}
    return {
        "name": f"{name}, seed {seed}",
        "model": m.get("kind"),
        "split": "held-out folds, pooled",
        "classification": pooled.get("classification"),
        "scores": scores or None,
        "appeal": scores.get("appeal", next(iter(scores.values()), None)) if scores else None,
        "tags": pooled.get("tags"),
        "predictions": pooled.get("scatter") or {},
    }


def write_cv_report(out_dir: str | os.PathLike, report: Mapping[str, Any], *, title: str = "encore cross-validation") -> Path:
    """Write ``report.json`` (the report as given) and ``report.html``; returns the HTML's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from encore import __version__

    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    payload = to_jsonable({"title": title, "created": created, "encore_version": __version__, **report})
    (out / "report.json").write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    comparisons = [
        dict(c, metric=f"{c['metric']} (mean over {c['seeds']} seed{'s' if c['seeds'] > 1 else ''})")
        for c in report.get("comparisons", [])
    ]
    body = [
        f"<header><h1>{_e(title)}</h1><p class='meta'>{len(report['models'])} model(s) · generated {_e(created)} "
        f"by encore {_e(__version__)}</p></header>",
        "<main>",
        _data_section(report),
        _headline_section(report),
        _targets_section(report),
    ]
    if comparisons:
        body.append(_comparison_section(comparisons))
    body.append(_novelty_section(report))
    body.append(_folds_section(report))
    for i, (name, m) in enumerate(report["models"].items()):
        body.append(_model_section(i + 1, _evaluate_style_result(name, m, report.get("ceilings") or {})))
    body += [
        "</main>",
        "<footer>Self-contained report: no external resources. The same numbers are in report.json; "
        "every held-out prediction is in predictions/.</footer>",
    ]
    return _write_page(out / "report.html", title, body)
