"""Calibration of class probabilities: ECE, reliability bins and temperature scaling.

Confidence is the top-class probability of each song; it is binned into ``n_bins``
equal-width bins on ``[0, 1]`` (bin ``i`` covers ``(i / n_bins, (i + 1) / n_bins]``, the
first bin also holds 0). The expected calibration error is the count-weighted mean gap
between accuracy and mean confidence over the bins (Guo et al., 2017, "On Calibration of
Modern Neural Networks", who also introduced temperature scaling).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from encore.exceptions import ParameterError

__all__ = [
    "apply_temperature",
    "check_class_indices",
    "check_probs",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_bins",
]

logger = logging.getLogger(__name__)


def check_class_indices(y_true: Sequence[int] | np.ndarray, n_classes: int | None = None, *, name: str = "y_true") -> np.ndarray:
    """Return ``y_true`` as a 1-D int64 array of class indices, checked.

    Args:
        y_true: class index per song, shape ``(n,)``.
        n_classes: when given, every index must lie in ``[0, n_classes)``.
        name: argument name used in error messages.

    Raises:
        ParameterError: not 1-D, not integral, or out of range.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ParameterError(
                f"{name} must hold integer class indices, got dtype {arr.dtype}; pass label indices, not names or scores"
            )
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ParameterError(f"{name} holds a negative class index ({arr.min()}); class indices start at 0")
    if n_classes is not None and arr.size and arr.max() >= n_classes:
        raise ParameterError(
            f"{name} holds class index {arr.max()} but there are only {n_classes} classes; "
            "check that label_names and the probability columns match the labels"
        )
    return arr


def check_probs(y_true: Sequence[int] | np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a ``(n, n_classes)`` probability matrix against its labels.

    Args:
        y_true: class index per song, shape ``(n,)``.
        probs: class probabilities, shape ``(n, n_classes)``.

    Returns:
        ``(y_true, probs)`` as int64 and float64 arrays.

    Raises:
        ParameterError: shapes disagree, or ``probs`` holds values outside ``[0, 1]`` or NaN.
    """
    p = np.asarray(probs, dtype=np.float64)
    y_shape = np.shape(y_true)
    if p.ndim != 2:
        raise ParameterError(
            f"probs must have shape (n, n_classes), got {p.shape}; for a binary score p use np.stack([1 - p, p], axis=1)"
        )
    if len(y_shape) != 1 or y_shape[0] != p.shape[0]:
        raise ParameterError(f"y_true has shape {y_shape} but probs has shape {p.shape}; both need one row per song")
    if not np.all(np.isfinite(p)):
        raise ParameterError(f"probs holds {int(np.sum(~np.isfinite(p)))} NaN or infinite values; fix the model output first")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ParameterError(
            f"probs must lie in [0, 1], got range [{p.min():.3g}, {p.max():.3g}]; pass softmax(logits), not logits"
        )
    y = check_class_indices(y_true, p.shape[1])
    if p.size:
        worst = float(np.max(np.abs(p.sum(axis=1) - 1.0)))
        if worst > 1e-3:
            logger.warning("probability rows do not sum to 1 (largest deviation %.3g); are these softmax outputs?", worst)
    return y, p


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ParameterError(f"n_bins={n_bins!r} must be a positive integer, e.g. 10")
    return int(n_bins)


def reliability_bins(y_true: Sequence[int] | np.ndarray, probs: np.ndarray, *, n_bins: int = 10) -> dict:
    """Bin songs by top-class probability and compare confidence with accuracy per bin.

    Args:
        y_true: class index per song, shape ``(n,)``.
        probs: class probabilities, shape ``(n, n_classes)``.
        n_bins: number of equal-width confidence bins on ``[0, 1]``.

    Returns:
        ``{"bin_edges": [n_bins + 1], "bin_confidence": [n_bins], "bin_accuracy": [n_bins],
        "bin_count": [n_bins]}``; the confidence and accuracy of an empty bin are ``None``.

    Raises:
        ParameterError: bad shapes or ``n_bins``.
    """
    n_bins = _check_n_bins(n_bins)
    y, p = check_probs(y_true, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    confidence = p.max(axis=1) if p.size else np.zeros(0)
    correct = (p.argmax(axis=1) == y).astype(np.float64) if p.size else np.zeros(0)
    # Right-closed bins: a confidence equal to an inner edge belongs to the lower bin.
    which = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct, minlength=n_bins)
    bin_conf: list[float | None] = []
    bin_acc: list[float | None] = []
    for c, cs, acs in zip(count, conf_sum, acc_sum):
        bin_conf.append(float(cs / c) if c else None)
        bin_acc.append(float(acs / c) if c else None)
    return {
        "bin_edges": [float(e) for e in edges],
        "bin_confidence": bin_conf,
        "bin_accuracy": bin_acc,
        "bin_count": [int(c) for c in count],
    }


def expected_calibration_error(y_true: Sequence[int] | np.ndarray, probs: np.ndarray, *, n_bins: int = 10) -> float:
    """Expected calibration error of the top-class probability.

    Args:
        y_true: class index per song, shape ``(n,)``.
        probs: class probabilities, shape ``(n, n_classes)``.
        n_bins: number of equal-width confidence bins on ``[0, 1]``.

    Returns:
        ``sum_b (count_b / n) * |accuracy_b - confidence_b|``, in ``[0, 1]``; NaN for no songs.

    Raises:
        ParameterError: bad shapes or ``n_bins``.
    """
    bins = reliability_bins(y_true, probs, n_bins=n_bins)
    total = sum(bins["bin_count"])
    if total == 0:
        return float("nan")
    gap = 0.0
    for c, conf, acc in zip(bins["bin_count"], bins["bin_confidence"], bins["bin_accuracy"]):
        if c:
            gap += c * abs(acc - conf)
    return float(gap / total)


def _check_logits(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ParameterError(f"logits must have shape (n, n_classes), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ParameterError(f"logits hold {int(np.sum(~np.isfinite(z)))} NaN or infinite values; fix the model output first")
    return z


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not np.isfinite(t) or t <= 0.0:
        raise ParameterError(f"temperature={temperature!r} must be a positive finite number (1.0 leaves logits unchanged)")
    return t


def fit_temperature(
    logits: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    *,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> float:
    """Fit the temperature ``T`` that minimises the NLL of ``softmax(logits / T)``.

    The search runs over ``log T`` with a bounded scalar minimiser; fit on validation songs,
    never on the test songs the report is computed on.

    Args:
        logits: pre-softmax scores, shape ``(n, n_classes)``.
        y_true: class index per song, shape ``(n,)``.
        bounds: lowest and highest temperature searched.

    Returns:
        The fitted temperature; above 1 means the model was over-confident.

    Raises:
        ParameterError: bad shapes, no songs, or bad bounds.
    """
    z = _check_logits(logits)
    y_shape = np.shape(y_true)
    if len(y_shape) != 1 or y_shape[0] != z.shape[0]:
        raise ParameterError(f"y_true has shape {y_shape} but logits has shape {z.shape}; both need one row per song")
    if z.shape[0] == 0:
        raise ParameterError("fit_temperature needs at least one song, got logits of shape (0, ...)")
    y = check_class_indices(y_true, z.shape[1])
    low, high = (float(b) for b in bounds)
    if not (0.0 < low < high and np.isfinite(high)):
        raise ParameterError(f"bounds={bounds!r} must be two positive temperatures, low < high, e.g. (0.05, 20.0)")
    rows = np.arange(z.shape[0])

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(z / np.exp(log_t), axis=1)[rows, y]))

    result = minimize_scalar(nll, bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-5})
    temperature = float(np.exp(result.x))
    if np.isclose(temperature, low, rtol=1e-3) or np.isclose(temperature, high, rtol=1e-3):
        logger.warning(
            "fitted temperature %.4g sits at the edge of the range searched %s; the fit is not trustworthy", temperature, bounds
        )
    logger.debug("fitted temperature %.4f (NLL %.4f -> %.4f)", temperature, nll(0.0), float(result.fun))
    return temperature


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / temperature)``.

    Args:
        logits: pre-softmax scores, shape ``(n, n_classes)``.
        temperature: from :func:`fit_temperature`.

    Returns:
        probs, shape ``(n, n_classes)``.

    Raises:
        ParameterError: bad shape or a non-positive temperature.
    """
    z = _check_logits(logits)
    t = _check_temperature(temperature)
    return softmax(z / t, axis=1)
