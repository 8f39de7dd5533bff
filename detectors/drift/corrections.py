"""Multiple-testing corrections that turn per-feature p-values into one batch decision.

A feature-wise drift test (KS, CvM, chi-square) runs one test per feature; testing ``d``
features at level ``alpha`` each would flag drift far more often than ``alpha`` on clean
traffic. Both corrections here keep the batch false-positive rate at most ``alpha`` when no
feature drifts:

- :func:`bonferroni` controls the family-wise error rate under any dependence between
  features (Bonferroni 1936; Dunn 1961).
- :func:`benjamini_hochberg` controls the false discovery rate for independent or positively
  dependent features, and under the global null its FWER equals ``alpha``; it is less
  conservative when several features drift (Benjamini & Hochberg 1995).

References
----------
C. E. Bonferroni, "Teoria statistica delle classi e calcolo delle probabilità", 1936.
O. J. Dunn, "Multiple comparisons among means", JASA 56 (1961), 52-64.
Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate: a practical and powerful
approach to multiple testing", J. R. Statist. Soc. B 57 (1995), 289-300.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import numpy as np

from detectors._validation import Interval, validate_params
from detectors.exceptions import DataError

__all__ = ["CORRECTIONS", "CorrectionResult", "benjamini_hochberg", "bonferroni"]

_ALPHA = {"alpha": Interval(Real, 0, 1, closed="neither")}


@dataclass(frozen=True)
class CorrectionResult:
    """A corrected batch decision.

    Parameters
    ----------
    reject : bool
        Whether the global null (no feature drifts) is rejected: ``p_value <= alpha``.
    threshold : float
        The threshold applied to each feature's p-value.
    p_value : float
        The corrected batch p-value, in [0, 1].
    """

    reject: bool
    threshold: float
    p_value: float


def _check(p_values: np.ndarray, alpha: float, caller: str) -> np.ndarray:
    validate_params({"alpha": alpha}, _ALPHA, caller)
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not ((p >= 0) & (p <= 1)).all():
        raise DataError(f"{caller} expects a non-empty 1-D array of p-values in [0, 1].")
    return p


def bonferroni(p_values: np.ndarray, alpha: float) -> CorrectionResult:
    """Bonferroni correction: compare each of ``d`` p-values to ``alpha / d``.

    The batch p-value is ``min(1, d * min_j p_j)``.

    Parameters
    ----------
    p_values : array_like of shape (d,)
        Per-feature p-values in [0, 1].
    alpha : float
        Family-wise significance level in (0, 1).

    Returns
    -------
    CorrectionResult

    Examples
    --------
    >>> bonferroni([0.01, 0.2, 0.5, 0.9], alpha=0.05)
    CorrectionResult(reject=True, threshold=0.0125, p_value=0.04)
    """
    p = _check(p_values, alpha, "bonferroni")
    p_value = min(1.0, p.size * float(p.min()))
    return CorrectionResult(p_value <= alpha, alpha / p.size, p_value)


def benjamini_hochberg(p_values: np.ndarray, alpha: float) -> CorrectionResult:
    """Benjamini-Hochberg step-up procedure at false discovery rate ``alpha``.

    With sorted p-values ``p_(1) <= ... <= p_(d)``, features ``1..k`` are rejected for the
    largest ``k`` with ``p_(k) <= k * alpha / d``; the threshold is that ``k * alpha / d``
    (``alpha / d`` when nothing is rejected). The batch p-value is the smallest adjusted
    p-value, ``min(1, min_k d * p_(k) / k)``, which equals
    ``scipy.stats.false_discovery_control(p).min()``.

    Parameters
    ----------
    p_values : array_like of shape (d,)
        Per-feature p-values in [0, 1].
    alpha : float
        False discovery rate in (0, 1).

    Returns
    -------
    CorrectionResult

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.02, 0.5, 0.9], alpha=0.05)
    CorrectionResult(reject=True, threshold=0.025, p_value=0.04)
    """
    p = np.sort(_check(p_values, alpha, "benjamini_hochberg"))
    d = p.size
    adjusted = p * (d / np.arange(1, d + 1))  # the order of operations of scipy's BH
    p_value = min(1.0, float(adjusted.min()))
    passed = np.flatnonzero(adjusted <= alpha)
    k = int(passed[-1]) + 1 if passed.size else 1
    return CorrectionResult(p_value <= alpha, k * alpha / d, p_value)


CORRECTIONS: dict[str, Callable[[np.ndarray, float], CorrectionResult]] = {
    "bonferroni": bonferroni,
    "fdr": benjamini_hochberg,
}
"""Corrections by the name a detector's ``correction`` parameter takes."""
