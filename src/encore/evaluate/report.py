"""A self-contained HTML report (plus the same numbers as JSON) for evaluated models.

:func:`write_report` takes one result dict per model (the outputs of
:mod:`encore.evaluate.metrics` plus the run's history, predictions and feature
importance) and writes ``report.html`` and ``report.json``. The HTML has no external
CSS, scripts or fonts; every plot is a PNG rendered by matplotlib's Agg canvas and
inlined as base64 in a ``<figure>``.

Plots are drawn on :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``: that needs no backend switch (``matplotlib.use("Agg")`` would change the
backend of the whole process, a notebook's included), keeps no global figure registry to
close, and is safe to call from a server thread.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from encore.evaluate.figures import (
    figure_html,
    learning_series,
    plot_appeal,
    plot_confusion,
    plot_history,
    plot_importance,
    plot_per_class,
    plot_reliability,
)
from encore.evaluate.feature_figures import family_rows, plot_family_importance, selection_table_rows
from encore.exceptions import ParameterError

__all__ = ["to_jsonable", "write_report"]

logger = logging.getLogger(__name__)

_MAX_FEATURES = 20

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; --accent: #0969da;
        --good: #1a7f37; --neutral: #6e7781; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: var(--bg-alt); border-bottom: 1px solid var(--line); padding: 1.5rem 2rem; }
header h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
main { max-width: 1180px; margin: 0 auto; padding: 1rem 2rem 3rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
.meta, .note, figcaption, footer { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .35rem .7rem; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.yes { color: var(--good); font-weight: 600; }
.no { color: var(--neutral); }
dl.info { display: grid; grid-template-columns: max-content auto; gap: .15rem 1rem; margin: .5rem 0 1rem; }
dl.info dt { color: var(--muted); }
dl.info dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem;
             overflow-wrap: anywhere; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2rem; align-items: flex-start; }
figure { margin: 0; padding: .6rem; border: 1px solid var(--line); border-radius: 6px; background: #fff;
         max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { margin-top: .4rem; max-width: 560px; }
footer { border-top: 1px solid var(--line); margin-top: 3rem; padding-top: 1rem; }
"""


# --------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Convert results to plain JSON types: numpy scalars and arrays, paths, NaN -> None.

    Args:
        obj: nested mappings, sequences and scalars.

    Returns:
        The same structure built from dict, list, str, int, float, bool and None only;
        non-finite floats become None (JSON has no NaN).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray) or hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    logger.warning("report: storing a %s as its string form in report.json", type(obj).__name__)
    return str(obj)


# --------------------------------------------------------------------------- formatting


def _e(text: Any) -> str:
    """HTML-escape any value's string form, quotes included."""
    return html.escape(str(text), quote=True)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(float(x))


def _fmt(x: Any, digits: int = 2) -> str:
    return f"{float(x):.{digits}f}" if _finite(x) else "–"


def _fmt_ci(figure: Mapping | None, digits: int = 2) -> str:
    """``"0.83 [0.71, 0.92]"`` from ``{"value", "ci_low", "ci_high"}``."""
    if not isinstance(figure, Mapping) or not _finite(figure.get("value")):
        return "–"
    value = _fmt(figure["value"], digits)
    if _finite(figure.get("ci_low")) and _finite(figure.get("ci_high")):
        return f"{value} [{_fmt(figure['ci_low'], digits)}, {_fmt(figure['ci_high'], digits)}]"
    return f"{value} [n/a]"


def _table(headers: Sequence[str], rows: Sequence[Sequence[tuple[str, bool]]], caption: str | None = None) -> str:
    """An HTML table; each cell is ``(already-escaped html, is_numeric)``."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption class='note'>{_e(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th scope='col'>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td class='num'>{c}</td>" if num else f"<td>{c}</td>" for c, num in row) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _summary_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{_e(k)}: {_summary_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_summary_value(v) for v in value)
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        return _fmt(value, 3)
    return _e(to_jsonable(value) if isinstance(value, (np.generic,)) else value)


# --------------------------------------------------------------------------- sections


def _data_section(summary: Mapping) -> str:
    rows = [
        [(_e(str(k).replace("_", " ")), False), (_summary_value(v), isinstance(v, (int, float, np.number)))]
        for k, v in summary.items()
    ]
    return "<section id='data'><h2>Data</h2>\n" + _table(["item", "value"], rows) + "</section>"


def _headline_section(results: Sequence[Mapping]) -> str:
    parts = ["<section id='headline'><h2>Headline metrics</h2>"]
    if not results:
        parts.append("<p class='note'>No models were evaluated.</p></section>")
        return "\n".join(parts)
    parts.append(
        "<p class='note'>Held-out songs. Each figure is the value on all songs with a percentile-bootstrap 95 % "
        "interval over songs in brackets. ECE: expected calibration error of the top-class probability "
        "(10 bins; lower is better).</p>"
    )
    with_tags = any(r.get("tags") for r in results)
    headers = ["model", "type", "split", "songs", "accuracy", "balanced accuracy", "macro-F1", "appeal Spearman", "ECE"]
    if with_tags:
        headers.append("tags macro ROC-AUC")
    rows = []
    for i, r in enumerate(results):
        cls, appeal, tags = r.get("classification") or {}, r.get("appeal") or {}, r.get("tags") or {}
        n = cls.get("n", appeal.get("n", tags.get("n")))
        row = [
            (f"<a href='#model-{i + 1}'>{_e(r['name'])}</a>", False),
            (_e(r.get("model") or "–"), False),
            (_e(r.get("split") or "–"), False),
            (_e(n) if n is not None else "–", True),
            (_fmt_ci(cls.get("accuracy")), True),
            (_fmt_ci(cls.get("balanced_accuracy")), True),
            (_fmt_ci(cls.get("macro_f1")), True),
            (_fmt_ci(appeal.get("spearman")), True),
            (_fmt(cls.get("ece"), 3), True),
        ]
        if with_tags:
            row.append((_fmt_ci(tags.get("macro_roc_auc")), True))
        rows.append(row)
    parts.append(_table(headers, rows))
    parts.append("</section>")
    return "\n".join(parts)


def _comparison_section(comparisons: Sequence[Mapping]) -> str:
    rows = []
    for c in comparisons:
        low, high = c.get("ci_low"), c.get("ci_high")
        interval = f"[{_fmt(low, 3)}, {_fmt(high, 3)}]"
        excludes = bool(c.get("excludes_zero"))
        rows.append(
            [
                (_e(c.get("a", "A")), False),
                (_e(c.get("b", "B")), False),
                (_e(c.get("metric", "–")), False),
                (_fmt(c.get("difference"), 3), True),
                (interval, True),
                ("<span class='yes'>yes</span>" if excludes else "<span class='no'>no</span>", False),
            ]
        )
    return (
        "<section id='comparisons'><h2>Paired comparisons</h2>\n"
        "<p class='note'>Paired bootstrap over the same songs: difference = metric(A) − metric(B), with its 95 % "
        "interval. An interval that excludes zero is a difference unlikely to be resampling noise.</p>\n"
        + _table(["A", "B", "metric", "difference (A − B)", "95 % interval", "excludes zero"], rows)
        + "</section>"
    )


def _classification_blocks(name: str, cls: Mapping) -> tuple[list[str], list[str]]:
    tables, figures = [], []
    names = [str(n) for n in cls.get("label_names", [])]
    per_class = cls.get("per_class") or []
    if per_class:
        rows = [
            [
                (_e(row.get("label")), False),
                (_fmt(row.get("precision")), True),
                (_fmt(row.get("recall")), True),
                (_fmt(row.get("f1")), True),
                (_e(row.get("support", "–")), True),
            ]
            for row in per_class
        ]
        tables.append("<h3>Per class</h3>\n" + _table(["class", "precision", "recall", "F1", "support"], rows))
    cm = cls.get("confusion_matrix")
    if cm is not None and np.size(cm):
        cm = np.asarray(cm, dtype=np.int64)
        labels = names if len(names) == cm.shape[0] else [str(i) for i in range(cm.shape[0])]
        figures.append(
            figure_html(
                plot_confusion(cm, labels),
                f"Confusion matrix for {name}: rows are true classes, columns predicted classes, cells give song counts",
                f"{name}: confusion matrix (rows true, columns predicted). Numbers are song counts; "
                "colour is the fraction of each true class.",
            )
        )
    if per_class:
        figures.append(
            figure_html(
                plot_per_class(per_class),
                f"Bar chart of precision, recall and F1 per class for {name}",
                f"{name}: precision, recall and F1 per class on the held-out songs.",
            )
        )
    reliability = cls.get("reliability")
    if reliability and sum(reliability.get("bin_count", [])) > 0:
        figures.append(
            figure_html(
                plot_reliability(reliability),
                f"Reliability diagram for {name}: accuracy against top-class probability per bin",
                f"{name}: reliability diagram (ECE {_fmt(cls.get('ece'), 3)}). Bars below the diagonal mean "
                "over-confidence; the lower panel counts songs per bin.",
            )
        )
    return tables, figures


_IMPORTANCES = (
    ("feature_importance", "Impurity importances (training songs)", "impurity importance"),
    ("permutation_importance", "Permutation importances (validation songs)", "accuracy drop when shuffled"),
    ("mel_band_importance", "Mel-band importances (validation songs)", "log-odds drop when occluded"),
)


def _importance_name(row: Mapping) -> str:
    """A feature's name, or a mel band's frequency range (contiguous with its neighbours')."""
    if "feature" in row:
        return str(row["feature"])
    if _finite(row.get("f_low_hz")) and _finite(row.get("f_high_hz")):
        from encore.explain.plot import format_hz_range

        return format_hz_range(float(row["f_low_hz"]), float(row["f_high_hz"]))
    return str(row.get("band"))


def _score_tables(r: Mapping) -> list[str]:
    """One table per regression target, with its reliability ceiling where the manifest has it."""
    scores = r.get("scores") or ({"appeal": r["appeal"]} if r.get("appeal") else {})
    tables = []
    for target, metrics in scores.items():
        if not metrics:
            continue
        rows = [
            [(_e(label), False), (_fmt_ci(metrics.get(key), 3), True)]
            for label, key in (("Spearman", "spearman"), ("Pearson", "pearson"), ("MAE", "mae"))
        ]
        rows.append(
            [("songs (missing target)", False), (f"{_e(metrics.get('n', '–'))} ({_e(metrics.get('n_missing', 0))})", True)]
        )
        reliability = metrics.get("reliability") or {}
        note = ""
        if reliability:
            rows.append([("target reliability (split-half)", False), (_fmt(reliability.get("reliability"), 3), True)])
            rows.append([("ceiling on correlation", False), (_fmt(reliability.get("ceiling"), 3), True)])
            note = (
                "<p class='note'>The ceiling is the highest correlation any model can reach against targets this "
                "noisy; read the model's Pearson beside it.</p>\n"
            )
        tables.append(f"<h3>{_e(target.capitalize())}</h3>\n" + note + _table(["metric", "value [95 % interval]"], rows))
    return tables


def _family_figure(name: str, rows_in: Sequence[Mapping], label: str, xlabel: str) -> str:
    rows = family_rows(rows_in)
    return figure_html(
        plot_family_importance(rows, xlabel=xlabel),
        f"Bar charts of {label.lower()} for {name}: summed per feature family, and the highest features coloured by family",
        f"{name}: {label.lower()} by feature family (left) and the highest {min(len(rows), 25)} features (right).",
    )


def novelty_sentence(novelty: Mapping) -> str:
    """One sentence on how many held-out songs the novelty threshold flagged (see ``novelty_rate``)."""
    text = (
        f"{novelty['flagged']} of {novelty['n']} songs flagged as unlike the training songs "
        f"({100 * novelty['share']:.1f} %, 95 % interval {100 * novelty['ci_low']:.1f}-{100 * novelty['ci_high']:.1f} %)"
    )
    if novelty.get("expected_share") is not None:
        reference = f"the {novelty['reference_songs']} {novelty['reference']} songs'" if novelty.get("reference_songs") else "its"
        text += (
            f"; the threshold is {reference} {novelty['threshold_percentile']:g}th percentile, so about "
            f"{100 * novelty['expected_share']:.0f} % is expected of songs like the catalogue's"
        )
    return text + "."


def _model_section(index: int, r: Mapping) -> str:
    name = str(r["name"])
    parts = [f"<section id='model-{index}' class='model'><h2>{_e(name)}</h2>"]
    info = [(label, r.get(key)) for label, key in (("model", "model"), ("split", "split"), ("run folder", "run_dir"))]
    parts.append("<dl class='info'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in info if v) + "</dl>")
    tables: list[str] = []
    figures: list[str] = []
    if r.get("classification"):
        t, f = _classification_blocks(name, r["classification"])
        tables += t
        figures += f
    appeal = r.get("appeal")
    tables += _score_tables(r)
    calibration = r.get("calibration")
    if calibration:
        rows = [
            [("temperature (from the model card)", False), (_fmt(calibration.get("temperature"), 3), True)],
            [("ECE before temperature (T = 1)", False), (_fmt(calibration.get("ece_before"), 3), True)],
            [("ECE after temperature", False), (_fmt(calibration.get("ece_after"), 3), True)],
        ]
        fitted = calibration.get("fitted_on")
        tables.append(
            "<h3>Calibration</h3>\n<p class='note'>Temperature scaling divides the class logits by T"
            + (f", fitted on the {_e(fitted)} split" if fitted else "; this card has none (retrain to fit one)")
            + ". ECE on the songs above, 10 bins.</p>\n"
            + _table(["", "value"], rows)
        )
    if r.get("novelty"):
        tables.append("<h3>Novelty</h3>\n<p class='note'>" + _e(novelty_sentence(r["novelty"])) + "</p>")
    tags = r.get("tags")
    if tags:
        rows = [
            [
                (_e(t.get("tag")), False),
                (_fmt(t.get("roc_auc")), True),
                (_fmt(t.get("pr_auc")), True),
                (_e(t.get("support", "–")), True),
            ]
            for t in tags.get("per_tag", [])
        ]
        tables.append(
            f"<h3>Tags</h3>\n<p class='note'>macro ROC-AUC {_fmt_ci(tags.get('macro_roc_auc'))}, macro PR-AUC "
            f"{_fmt_ci(tags.get('macro_pr_auc'))}; tags with one class only show – and are left out.</p>\n"
            + _table(["tag", "ROC-AUC", "PR-AUC", "positive songs"], rows)
        )
    history = r.get("history")
    if history:
        epochs, losses, scores = learning_series(history)
        if losses or scores:
            figures.append(
                figure_html(
                    plot_history(epochs, losses, scores),
                    f"Learning curves for {name}: loss and validation scores per epoch",
                    f"{name}: learning curves per epoch.",
                )
            )
    predictions = r.get("predictions") or {}
    if predictions.get("appeal_true") is not None and predictions.get("appeal_pred") is not None:
        observed = np.array([np.nan if v is None else float(v) for v in predictions["appeal_true"]])
        predicted = np.array([np.nan if v is None else float(v) for v in predictions["appeal_pred"]])
        keep = np.isfinite(observed) & np.isfinite(predicted) if observed.shape == predicted.shape else np.zeros(0, bool)
        if keep.any():
            spearman = (appeal or {}).get("spearman")
            figures.append(
                figure_html(
                    plot_appeal(observed[keep], predicted[keep]),
                    f"Scatter plot of predicted against observed appeal for {name}",
                    f"{name}: predicted against observed appeal, {int(keep.sum())} songs"
                    + (f", Spearman {_fmt_ci(spearman)}." if spearman else "."),
                )
            )
        elif observed.shape != predicted.shape:
            logger.warning(
                "report: %s has %d appeal targets but %d predictions; scatter left out", name, observed.size, predicted.size
            )
    for key, label, xlabel in _IMPORTANCES:
        rows_in = r.get(key)
        if not rows_in:
            continue
        pairs = [(_importance_name(row), float(row["importance"])) for row in rows_in if _finite(row.get("importance"))]
        pairs = sorted(pairs, key=lambda p: p[1], reverse=True)[:_MAX_FEATURES]
        if not pairs:
            continue
        chart, order = pairs, "highest"
        if key == "mel_band_importance" and all(_finite(row.get("f_low_hz")) for row in rows_in):
            by_band = {_importance_name(row): float(row["f_low_hz"]) for row in rows_in}
            chart, order = sorted(pairs, key=lambda p: -by_band[p[0]]), "by frequency, highest band on top"
        if key != "feature_importance":
            rows = [
                [(_e(n), False), (_fmt(v, 4), True), (_fmt(row.get("std"), 4), True)]
                for (n, v), row in zip(pairs, sorted(rows_in, key=lambda q: -float(q["importance"])))
            ]
            tables.append(f"<h3>{_e(label)}</h3>\n" + _table(["rank order", xlabel, "sd"], rows))
        if key in ("feature_importance", "permutation_importance"):
            figures.append(_family_figure(name, rows_in, label, xlabel))  # the classical features, by family
            continue
        figures.append(
            figure_html(
                plot_importance(chart, xlabel=xlabel),
                f"Bar chart of the {len(pairs)} highest {label.lower()} for {name}",
                f"{name}: {label.lower()}, {len(pairs)} {order}."
                if order != "highest"
                else f"{name}: {label.lower()}, highest {len(pairs)}.",
            )
        )
    if r.get("feature_selection"):
        tables.append(
            "<h3>Features kept by selection</h3>\n<p class='note'>Ranked by importance on the training songs; how many "
            "to keep was chosen by inner cross-validation on those songs.</p>\n"
            + _table(["head", "kept", "features kept, by family"], selection_table_rows(r["feature_selection"]))
        )
    parts.extend(tables)
    if figures:
        parts.append("<div class='figures'>\n" + "\n".join(figures) + "\n</div>")
    parts.append("</section>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- entry point


def _check_results(results: Sequence[Mapping]) -> list[Mapping]:
    if isinstance(results, Mapping) or isinstance(results, (str, bytes)):
        raise ParameterError("results must be a sequence of result dicts, one per model; wrap a single result in a list")
    checked = []
    for i, r in enumerate(results):
        if not isinstance(r, Mapping) or not r.get("name"):
            raise ParameterError(f"results[{i}] must be a dict with a non-empty 'name', got {type(r).__name__}")
        checked.append(r)
    return checked


def _write_page(path: Path, title: str, body: list[str]) -> Path:
    """A self-contained HTML page of ``body``'s parts under ``title``, with the report's style."""
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    out_dir: str | os.PathLike,
    results: Sequence[Mapping],
    *,
    title: str = "encore report",
    data_summary: Mapping | None = None,
    comparisons: Sequence[Mapping] = (),
) -> Path:
    """Write ``report.html`` and ``report.json`` for evaluated models.

    Args:
        out_dir: folder to write into; created if missing.
        results: one dict per model with ``name`` and optionally ``model``, ``run_dir``,
            ``split``, ``classification`` (:func:`~encore.evaluate.metrics.classification_metrics`),
            ``appeal`` (:func:`~encore.evaluate.metrics.regression_metrics`), ``tags``
            (:func:`~encore.evaluate.metrics.multilabel_metrics`), ``history`` (one dict per
            epoch), ``predictions`` (``track_id``, ``appeal_true``, ``appeal_pred`` lists) and
            ``feature_importance`` (``{"feature", "importance"}`` rows); missing or None parts
            are left out.
        title: page title.
        data_summary: counts of songs, artists, listeners, events, splits, labels.
        comparisons: :func:`~encore.evaluate.metrics.compare_paired` outputs with ``a``,
            ``b`` and ``metric`` added.

    Returns:
        Path of ``report.html``.

    Raises:
        ParameterError: ``out_dir`` is a file, or a result is not a dict with a name.
    """
    results = _check_results(results)
    comparisons = list(comparisons)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out_dir={os.fspath(out)!r} is a file; pass a folder for report.html and report.json")
    out.mkdir(parents=True, exist_ok=True)
    from encore import __version__

    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    payload = to_jsonable(
        {
            "title": title,
            "created": created,
            "encore_version": __version__,
            "data_summary": dict(data_summary) if data_summary else None,
            "results": [dict(r) for r in results],
            "comparisons": [dict(c) for c in comparisons],
        }
    )
    json_path = out / "report.json"
    json_path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")

    body = [
        f"<header><h1>{_e(title)}</h1><p class='meta'>{len(results)} model(s) · generated {_e(created)} "
        f"by encore {_e(__version__)}</p></header>",
        "<main>",
    ]
    if data_summary:
        body.append(_data_section(data_summary))
    body.append(_headline_section(results))
    if comparisons:
        body.append(_comparison_section(comparisons))
    body.extend(_model_section(i + 1, r) for i, r in enumerate(results))
    body.append("</main>")
    body.append("<footer>Self-contained report: no external resources. The same numbers are in report.json.</footer>")
    html_path = _write_page(out / "report.html", title, body)
    logger.info("wrote %s and %s", html_path, json_path)
    return html_path
