"""Interval estimates and tests for proportions: Wilson, Clopper-Pearson, two-proportion z.

Robust accuracy on N sampled points is a binomial proportion; these turn counts into the
intervals a report shows and the decision a history check makes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["clopper_pearson_lower", "two_proportion_z_test", "wilson_interval"]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (Wilson 1927).

    With ``p = k / n`` and ``z = Φ⁻¹(1 - (1 - confidence) / 2)``:
    ``(p + z²/2n ± z sqrt(p(1 - p)/n + z²/4n²)) / (1 + z²/n)``. Unlike the Wald interval it
    stays inside [0, 1] and keeps its coverage near 0 and 1, where robust accuracies live.

    References
    ----------
    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    JASA 22 (1927), 209-212.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    >>> [round(v, 4) for v in wilson_interval(0, 10)]
    [0.0, 0.2775]
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n and n > 0; got k={k}, n={n}.")
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p, z2 = k / n, z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, center - half), min(1.0, center + half)


def clopper_pearson_lower(k, n: int, alpha: float) -> np.ndarray:
    """One-sided ``(1 - alpha)`` Clopper-Pearson lower bound on a binomial proportion.

    ``B(alpha; k, n - k + 1)``, the ``alpha`` quantile of a Beta distribution, and 0 for
    ``k = 0`` (Clopper & Pearson 1934). Vectorised over ``k``.

    Examples
    --------
    >>> clopper_pearson_lower([0, 50, 100], 100, 0.001).round(4)
    array([0.    , 0.3448, 0.9333])
    """
    k = np.asarray(k, dtype=float)
    with np.errstate(invalid="ignore"):
        lower = stats.beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, lower, 0.0)


def two_proportion_z_test(k_base: int, n_base: int, k_new: int, n_new: int) -> tuple[float, float]:
    """One-sided pooled z test that the new proportion is lower than the baseline's.

    ``z = (p_new - p_base) / sqrt(p (1 - p) (1/n_base + 1/n_new))`` with the pooled
    ``p = (k_base + k_new) / (n_base + n_new)``; the p-value is ``Φ(z)``. Returns
    ``(z, p_value)``; ``(0.0, 1.0)`` when both samples are all-robust or all-broken.

    Examples
    --------
    >>> z, p = two_proportion_z_test(80, 100, 60, 100)
    >>> round(z, 4), round(p, 5)
    (-3.0861, 0.00101)
    """
    if n_base <= 0 or n_new <= 0:
        raise ValueError("two_proportion_z_test needs two non-empty samples.")
    pooled = (k_base + k_new) / (n_base + n_new)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_base + 1 / n_new))
    if se == 0:
        return 0.0, 1.0
    z = (k_new / n_new - k_base / n_base) / se
    return z, float(stats.norm.cdf(z))
