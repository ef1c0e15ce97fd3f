"""The HTML / JSON report: self-contained, one valid PNG per plot, escaped, same numbers."""

from __future__ import annotations

import base64
import io
import json
import re

import matplotlib.image
import numpy as np
import pytest

from encore.evaluate import classification_metrics, compare_paired, regression_metrics, write_report
from encore.exceptions import ParameterError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"
LABELS = ["rock", EVIL, "$100 bill & co"]
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">')


def _fake_model(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    wrong = rng.random(len(y)) > accuracy
    pred = np.where(wrong, (y + rng.integers(1, 3, len(y))) % 3, y)
    probs = rng.dirichlet(np.ones(3), len(y)) * 0.4
    probs[np.arange(len(y)), pred] += 0.6
    return probs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 90
    y = rng.integers(0, 3, n)
    probs_cnn, probs_rf = _fake_model(rng, y, 0.85), _fake_model(rng, y, 0.6)
    appeal_true = rng.random(n)
    appeal_true[[4, 9]] = np.nan
    appeal_pred = np.nan_to_num(appeal_true, nan=0.5) + rng.normal(0, 0.15, n)
    cls_cnn = classification_metrics(y, probs_cnn, LABELS, n_boot=200)
    cls_rf = classification_metrics(y, probs_rf, LABELS, n_boot=200)
    appeal = regression_metrics(appeal_true, appeal_pred, n_boot=200)
    results = [
        {
            "name": "cnn",
            "model": "small_cnn",
            "run_dir": "runs/cnn-1",
            "split": "test",
            "classification": cls_cnn,
            "appeal": appeal,
            "tags": None,
            "history": [
                {"epoch": e, "train_loss": 1.2 / e, "val_loss": 1.3 / e + 0.05 * e, "val_accuracy": 0.5 + 0.04 * e, "lr": 1e-3}
                for e in range(1, 9)
            ],
            "predictions": {
                "track_id": [f"t{i}" for i in range(n)],
                "appeal_true": [None if np.isnan(v) else float(v) for v in appeal_true],
                "appeal_pred": appeal_pred.tolist(),
            },
            "feature_importance": None,
        },
        {
            "name": "random forest",
            "model": "random_forest",
            "run_dir": "runs/rf-1",
            "split": "test",
            "classification": cls_rf,
            "appeal": None,
            "tags": None,
            "history": None,
            "predictions": None,
            "feature_importance": [{"feature": f"mfcc_{i}", "importance": np.float32(rng.random())} for i in range(25)],
        },
    ]
    comparison = compare_paired(y, probs_cnn.argmax(1), probs_rf.argmax(1), "accuracy", n_boot=200)
    comparisons = [{**comparison, "a": "cnn", "b": "random forest", "metric": "accuracy"}]
    summary = {
        "songs": 120,
        "artists": 30,
        "listeners": 80,
        "events": 9000,
        "labelled": 118,
        "splits": {"train": 80, "val": 18, "test": 22},
        "label_counts": {"rock": 40, EVIL: 3},
    }
    out_dir = tmp_path_factory.mktemp("report")
    path = write_report(out_dir, results, title="test <report>", data_summary=summary, comparisons=comparisons)
    return {"path": path, "html": path.read_text(encoding="utf-8"), "results": results, "comparisons": comparisons}


def test_files_are_written(report):
    path = report["path"]
    assert path.name == "report.html" and path.is_file()
    assert (path.parent / "report.json").is_file()


def test_one_valid_png_per_plot(report):
    html = report["html"]
    # cnn: confusion, per-class, reliability, learning curves, appeal scatter;
    # random forest: confusion, per-class, reliability, feature importance.
    expected = 9
    assert html.count("<img") == expected
    assert html.count("<figure>") == html.count("<figcaption>") == expected
    images = IMG.findall(html)
    assert len(images) == expected
    for data, alt in images:
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_SIGNATURE)
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert np.ptp(pixels[..., :3]) > 0.1, f"flat image: {alt}"
        assert len(alt) > 20


def test_html_is_self_contained(report):
    html = report["html"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "<script" not in html.lower()


def test_text_is_escaped(report):
    html = report["html"]
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "test &lt;report&gt;" in html
    assert "$100 bill &amp; co" in html


def test_headline_and_comparison_tables(report):
    html = report["html"]
    for result in report["results"]:
        acc = result["classification"]["accuracy"]
        assert f"{acc['value']:.2f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]" in html
        assert f"{result['classification']['ece']:.3f}" in html
    rho = report["results"][0]["appeal"]["spearman"]
    assert f"{rho['value']:.2f} [{rho['ci_low']:.2f}, {rho['ci_high']:.2f}]" in html
    comparison = report["comparisons"][0]
    assert f"{comparison['difference']:.3f}" in html
    assert "excludes zero" in html
    assert "9000" in html and "train: 80" in html


def test_json_matches_the_numbers(report):
    data = json.loads((report["path"].parent / "report.json").read_text(encoding="utf-8"))
    assert data["title"] == "test <report>"
    assert [r["name"] for r in data["results"]] == ["cnn", "random forest"]
    for stored, result in zip(data["results"], report["results"]):
        cls = result["classification"]
        assert stored["classification"]["accuracy"] == cls["accuracy"]
        assert stored["classification"]["confusion_matrix"] == cls["confusion_matrix"]
        assert stored["classification"]["ece"] == pytest.approx(cls["ece"])
        assert stored["classification"]["label_names"] == LABELS
    assert data["results"][0]["appeal"]["spearman"] == report["results"][0]["appeal"]["spearman"]
    assert data["results"][0]["predictions"]["appeal_true"][4] is None
    importance = data["results"][1]["feature_importance"]
    assert importance[0]["importance"] == pytest.approx(float(report["results"][1]["feature_importance"][0]["importance"]))
    assert data["comparisons"][0]["difference"] == pytest.approx(report["comparisons"][0]["difference"])
    assert data["comparisons"][0]["excludes_zero"] is report["comparisons"][0]["excludes_zero"]
    assert data["data_summary"]["splits"] == {"train": 80, "val": 18, "test": 22}


def test_minimal_result_and_bad_out_dir(tmp_path):
    path = write_report(tmp_path / "new" / "dir", [{"name": "empty", "classification": None}])
    html = path.read_text(encoding="utf-8")
    assert "<img" not in html and "empty" in html
    json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(ParameterError, match="out_dir"):
        write_report(not_a_dir, [])
    with pytest.raises(ParameterError, match="name"):
        write_report(tmp_path / "r", [{"model": "cnn"}])


def test_classical_importances_are_plotted_by_family_with_the_kept_features(tmp_path):
    from encore.evaluate.feature_figures import family_rows
    from encore.features.handcrafted import handcrafted_families, handcrafted_feature_names

    names = handcrafted_feature_names()
    rng = np.random.default_rng(0)
    rows = [{"feature": n, "importance": float(v)} for n, v in zip(names, rng.random(len(names)), strict=True)]
    rows[0]["importance"] = float("nan")  # left out, not plotted
    kept = ["tempo_bpm", "tonnetz_fifth_x_mean", "mfcc_01_mean"]
    result = {
        "name": "boosting",
        "model": "gradient_boosting",
        "feature_importance": rows,
        "feature_selection": {"classifier": {"kept": kept, "importance": [0.3, 0.2, 0.1], "n_kept": 3, "n_features": len(names)}},
    }
    page = write_report(tmp_path, [result]).read_text(encoding="utf-8")
    assert "Features kept by selection" in page and f"3 of {len(names)}" in page
    assert "<b>rhythm</b>: tempo_bpm" in page and "<b>tonnetz</b>: tonnetz_fifth_x_mean" in page
    images = IMG.findall(page)
    assert len(images) == 1 and "by feature family" in page
    assert base64.b64decode(images[0][0]).startswith(PNG_SIGNATURE)
    grouped = family_rows(rows)
    assert len(grouped) == len(names) - 1 and {f for _, f, _ in grouped} == set(handcrafted_families())
