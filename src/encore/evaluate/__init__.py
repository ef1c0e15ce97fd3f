"""Evaluation: metrics with bootstrap intervals, calibration, and the HTML report.

``write_report`` is imported on first use, so ``import encore.evaluate`` does not load
matplotlib.
"""

from __future__ import annotations

from typing import Any

from encore.evaluate.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from encore.evaluate.metrics import (
    PAIRED_METRICS,
    bootstrap_ci,
    classification_metrics,
    compare_paired,
    multilabel_metrics,
    regression_metrics,
)

__all__ = [
    "PAIRED_METRICS",
    "apply_temperature",
    "bootstrap_ci",
    "classification_metrics",
    "compare_paired",
    "expected_calibration_error",
    "fit_temperature",
    "multilabel_metrics",
    "regression_metrics",
    "reliability_bins",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from encore.evaluate.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
