"""Metrics and calibration against scikit-learn / scipy on small known arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from encore.evaluate import (
    apply_temperature,
    bootstrap_ci,
    classification_metrics,
    compare_paired,
    expected_calibration_error,
    fit_temperature,
    multilabel_metrics,
    regression_metrics,
    reliability_bins,
)
from encore.exceptions import ParameterError

LABELS = ["rock", "jazz", "folk"]


def one_hot_probs(pred: np.ndarray, n_classes: int, top: float = 0.8) -> np.ndarray:
    """Probabilities whose arg-max is ``pred``."""
    probs = np.full((len(pred), n_classes), (1.0 - top) / (n_classes - 1))
    probs[np.arange(len(pred)), pred] = top
    return probs


def noisy_predictions(rng: np.random.Generator, y: np.ndarray, accuracy: float, n_classes: int) -> np.ndarray:
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, n_classes, len(y))) % n_classes, y)


# --------------------------------------------------------------------------- classification


def test_classification_matches_sklearn():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 2, 1])
    m = classification_metrics(y, one_hot_probs(pred, 3), LABELS, n_boot=200)
    assert m["n"] == 12
    assert m["accuracy"]["value"] == accuracy_score(y, pred)
    assert m["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    assert m["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, zero_division=0)
    for k, row in enumerate(m["per_class"]):
        assert row["label"] == LABELS[k]
        assert row["precision"] == pytest.approx(precision[k])
        assert row["recall"] == pytest.approx(recall[k])
        assert row["f1"] == pytest.approx(f1[k])
        assert row["support"] == support[k]
    assert m["label_names"] == LABELS
    assert set(m["reliability"]) >= {"bin_confidence", "bin_accuracy", "bin_count"}
    assert sum(m["reliability"]["bin_count"]) == 12


def test_macro_f1_with_a_missing_class_matches_sklearn_default():
    y = np.array([0, 0, 1, 1, 0, 1])
    pred = np.array([0, 1, 1, 1, 0, 0])  # class 2 neither true nor predicted
    m = classification_metrics(y, one_hot_probs(pred, 3), LABELS, n_boot=50)
    assert m["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["per_class"][2]["support"] == 0


def test_ci_contains_value_and_narrows_with_more_songs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 2000):
        y = rng.integers(0, 3, n)
        pred = noisy_predictions(rng, y, 0.75, 3)
        m = classification_metrics(y, one_hot_probs(pred, 3), LABELS, n_boot=500, seed=1)
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert m[key]["ci_low"] <= m[key]["value"] <= m[key]["ci_high"]
        widths.append(m["accuracy"]["ci_high"] - m["accuracy"]["ci_low"])
    assert widths[1] < widths[0] / 3


def test_perfect_predictions_give_ci_of_one():
    y = np.array([0, 1, 2, 0, 1, 2, 2, 1])
    m = classification_metrics(y, one_hot_probs(y, 3), LABELS, n_boot=300)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert m[key] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    a = classification_metrics(y, probs, LABELS, n_boot=100, seed=7)
    b = classification_metrics(y, probs, LABELS, n_boot=100, seed=7)
    c = classification_metrics(y, probs, LABELS, n_boot=100, seed=8)
    assert a == b
    assert a["accuracy"] != c["accuracy"]


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ParameterError, match=r"\(5,\).*\(4, 3\)"):
        classification_metrics([0, 1, 2, 0, 1], np.full((4, 3), 1 / 3), LABELS)
    with pytest.raises(ParameterError, match="label_names"):
        classification_metrics([0, 1], np.full((2, 3), 1 / 3), ["a", "b"])
    with pytest.raises(ParameterError, match="softmax"):
        classification_metrics([0, 1], np.array([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]]), LABELS)
    with pytest.raises(ParameterError, match="n_boot"):
        classification_metrics([0, 1], np.full((2, 3), 1 / 3), LABELS, n_boot=0)


def test_bootstrap_ci_skips_degenerate_resamples():
    y = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    score = np.array([0.1, 0.3, 0.2, 0.6, 0.7, 0.5, 0.4, 0.2])
    ci = bootstrap_ci(roc_auc_score, y, score, n_boot=300, seed=0)
    assert ci["value"] == pytest.approx(roc_auc_score(y, score))
    assert 0.0 <= ci["ci_low"] <= ci["ci_high"] <= 1.0


# --------------------------------------------------------------------------- regression


def test_regression_matches_scipy_and_drops_nan_targets():
    rng = np.random.default_rng(2)
    y = np.round(rng.random(80), 1)  # ties
    pred = y + rng.normal(0, 0.2, 80)
    y_with_gaps = y.copy()
    y_with_gaps[[3, 10, 50]] = np.nan
    m = regression_metrics(y_with_gaps, pred, n_boot=300)
    keep = ~np.isnan(y_with_gaps)
    assert m["n"] == 77 and m["n_missing"] == 3
    assert m["spearman"]["value"] == pytest.approx(spearmanr(y[keep], pred[keep])[0])
    assert m["pearson"]["value"] == pytest.approx(pearsonr(y[keep], pred[keep])[0])
    assert m["mae"]["value"] == pytest.approx(np.mean(np.abs(y[keep] - pred[keep])))
    for key in ("spearman", "pearson", "mae"):
        assert m[key]["ci_low"] <= m[key]["value"] <= m[key]["ci_high"]


def test_regression_rejects_nan_predictions():
    with pytest.raises(ParameterError, match="y_pred"):
        regression_metrics([0.1, 0.2, 0.3], [0.1, np.nan, 0.3])
    with pytest.raises(ParameterError, match="shape"):
        regression_metrics([0.1, 0.2, 0.3], [0.1, 0.3])


# --------------------------------------------------------------------------- multi-label


def test_multilabel_matches_sklearn_and_excludes_one_class_tags():
    rng = np.random.default_rng(4)
    n = 60
    targets = rng.random((n, 3))  # soft targets
    targets[:, 2] = 0.2  # never positive once binarised
    probs = np.clip(targets + rng.normal(0, 0.3, (n, 3)), 0, 1).round(1)  # ties
    m = multilabel_metrics(targets, probs, ["calm", "loud", "rare"], n_boot=100)
    binary = targets >= 0.5
    for j in range(2):
        row = m["per_tag"][j]
        assert row["roc_auc"] == pytest.approx(roc_auc_score(binary[:, j], probs[:, j]))
        assert row["pr_auc"] == pytest.approx(average_precision_score(binary[:, j], probs[:, j]))
        assert row["support"] == binary[:, j].sum()
    assert m["per_tag"][2] == {"tag": "rare", "roc_auc": None, "pr_auc": None, "support": 0}
    expected = np.mean([roc_auc_score(binary[:, j], probs[:, j]) for j in range(2)])
    assert m["macro_roc_auc"]["value"] == pytest.approx(expected)
    assert m["macro_roc_auc"]["ci_low"] <= expected <= m["macro_roc_auc"]["ci_high"]


# --------------------------------------------------------------------------- paired comparison


def test_paired_comparison_detects_a_real_difference():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 300)
    good, poor = noisy_predictions(rng, y, 0.9, 4), noisy_predictions(rng, y, 0.6, 4)
    for metric in ("accuracy", "macro_f1"):
        c = compare_paired(y, good, poor, metric, n_boot=500)
        assert c["difference"] > 0 and c["excludes_zero"]
        assert c["ci_low"] <= c["difference"] <= c["ci_high"]
        assert c["value_a"] - c["value_b"] == pytest.approx(c["difference"])
    reverse = compare_paired(y, poor, good, "accuracy", n_boot=500)
    assert reverse["ci_high"] < 0 and reverse["excludes_zero"]


def test_paired_comparison_finds_no_difference_under_the_null():
    # Both models miss 75 of 300 songs, but different songs: equally good, not identical.
    rng = np.random.default_rng(6)
    y = rng.integers(0, 4, 300)
    order = rng.permutation(300)
    a, b = y.copy(), y.copy()
    a[order[:75]] = (y[order[:75]] + 1) % 4
    b[order[50:125]] = (y[order[50:125]] + 2) % 4
    c = compare_paired(y, a, b, "accuracy", n_boot=500)
    assert c["difference"] == pytest.approx(0.0)
    assert not c["excludes_zero"]
    assert c["ci_low"] < 0 < c["ci_high"]
    same = compare_paired(y, a, a, "macro_f1", n_boot=200)
    assert (same["difference"], same["ci_low"], same["ci_high"], same["excludes_zero"]) == (0.0, 0.0, 0.0, False)


def test_paired_spearman():
    rng = np.random.default_rng(7)
    y = rng.random(200)
    good, poor = y + rng.normal(0, 0.1, 200), y + rng.normal(0, 1.0, 200)
    c = compare_paired(y, good, poor, "spearman", n_boot=300)
    assert c["excludes_zero"] and c["difference"] > 0
    with pytest.raises(ParameterError, match="metric='auc'"):
        compare_paired(y, good, poor, "auc")


# --------------------------------------------------------------------------- calibration


def test_ece_is_zero_for_perfectly_calibrated_bins():
    y, probs = [], []
    for confidence in (0.55, 0.65, 0.75, 0.85, 0.95):
        n_correct = round(confidence * 20)
        y += [0] * n_correct + [1] * (20 - n_correct)
        probs += [[confidence, 1 - confidence]] * 20
    assert expected_calibration_error(np.array(y), np.array(probs)) == pytest.approx(0.0, abs=1e-12)
    bins = reliability_bins(np.array(y), np.array(probs))
    assert sum(bins["bin_count"]) == 100
    assert bins["bin_confidence"][0] is None and bins["bin_count"][0] == 0
    assert bins["bin_accuracy"][9] == pytest.approx(0.95)


def test_ece_is_large_for_overconfident_predictions():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 400)
    pred = noisy_predictions(rng, y, 0.5, 2)
    ece = expected_calibration_error(y, one_hot_probs(pred, 2, top=0.99))
    assert ece > 0.4


def test_temperature_is_recovered_for_overconfident_logits():
    rng = np.random.default_rng(9)
    n, k = 3000, 4
    true_logits = rng.normal(0, 1.5, (n, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(true_logits, axis=1)])
    overconfident = 3.0 * true_logits
    temperature = fit_temperature(overconfident, y)
    assert 2.5 < temperature < 3.5
    assert fit_temperature(true_logits, y) == pytest.approx(1.0, abs=0.15)
    calibrated = apply_temperature(overconfident, temperature)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, softmax(overconfident, axis=1))
    with pytest.raises(ParameterError, match="temperature"):
        apply_temperature(overconfident, 0.0)
