"""Feature-wise two-sample Cramér-von Mises drift test: :class:`CVMDrift`."""

from __future__ import annotations

import math
from numbers import Real
from typing import ClassVar

import numpy as np
from scipy import special, stats

from detectors._validation import Constraint, Interval, Options
from detectors.drift.base import DriftDetector
from detectors.drift.corrections import CORRECTIONS
from detectors.drift.result import DriftResult

__all__ = ["CVMDrift"]

_MAX_AUTO_EXACT = 20  # as in scipy.stats.cramervonmises_2samp: "auto" is exact up to 20 rows


class CVMDrift(DriftDetector):
    """Two-sample Cramér-von Mises test on every feature, with a multiple-testing correction.

    For feature ``j``, with mid-ranks ``r_i`` of the sorted reference (size ``n``) and ``s_k``
    of the sorted batch (size ``m``) in the pooled sample,
    ``U = n sum_i (r_i - i)^2 + m sum_k (s_k - k)^2`` and
    ``T = U / (n m (n + m)) - (4 n m - 1) / (6 (n + m))`` (Anderson 1962, eq. 9-10).
    Statistics and p-values equal ``scipy.stats.cramervonmises_2samp(x_ref[:, j], x[:, j])``:
    the exact null while both samples have at most 20 rows under ``"auto"``, Anderson's
    normalised limit beyond. The per-feature p-values are combined by ``correction``.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level of the batch decision, in (0, 1).
    correction : {"bonferroni", "fdr"}, default="bonferroni"
        Bonferroni (family-wise error) or Benjamini-Hochberg (false discovery rate).
    method : {"auto", "exact", "asymptotic"}, default="auto"
        How p-values are computed, as in ``scipy.stats.cramervonmises_2samp``. The exact null
        is exponential in the sample sizes: keep ``"exact"`` for a few dozen rows.

    Attributes
    ----------
    x_ref_sorted_ : ndarray of shape (n_reference, n_features)
        The reference, each column sorted once in ``fit``.
    n_features_in_, n_reference_ : int
        Shape of the reference.

    Notes
    -----
    ``test`` sorts the batch and finds mid-ranks with ``np.searchsorted`` against the sorted
    reference, O((n + m) log(n + m)) per feature; the reference is never re-sorted. Ties get
    mid-ranks, as in scipy; the null distribution assumes continuous features.

    References
    ----------
    T. W. Anderson, "On the distribution of the two-sample Cramér-von Mises criterion",
    Ann. Math. Statist. 33 (1962), 1148-1159.
    S. Csörgő and J. J. Faraway, "The exact and asymptotic distributions of Cramér-von Mises
    statistics", J. R. Statist. Soc. B 58 (1996), 221-234.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = CVMDrift(p_val=0.05).fit(rng.normal(size=(1000, 4)))
    >>> r = det.test(rng.normal(size=(200, 4)))
    >>> r.is_drift, round(r.p_value, 3)
    (False, 0.467)
    >>> shifted = rng.normal(size=(200, 4)) * np.array([1.0, 1.0, 1.0, 1.6])
    >>> r = det.test(shifted)
    >>> r.is_drift, int(np.argmin(r.feature_p_values))
    (True, 3)
    """

    name = "cvm"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_val": Interval(Real, 0, 1, closed="neither"),
        "correction": Options(tuple(CORRECTIONS)),
        "method": Options(("auto", "exact", "asymptotic")),
    }

    def __init__(
        self, p_val: float = 0.05, correction: str = "bonferroni", method: str = "auto"
    ) -> None:
        self.p_val = p_val
        self.correction = correction
        self.method = method
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        self.x_ref_sorted_ = np.asfortranarray(np.sort(x_ref, axis=0))

    def _test(self, x: np.ndarray) -> DriftResult:
        ref = self.x_ref_sorted_
        n, m = ref.shape[0], x.shape[0]
        exact = self.method == "exact" or (self.method == "auto" and max(n, m) <= _MAX_AUTO_EXACT)
        if exact:
            res = [stats.cramervonmises_2samp(ref[:, j], x[:, j], method="exact")
                   for j in range(x.shape[1])]  # fmt: skip
            t, p = np.array([r.statistic for r in res]), np.array([r.pvalue for r in res])
        else:
            t = statistics(ref, np.sort(x, axis=0))
            p = _asymptotic_p_values(t, n, m)
        decision = CORRECTIONS[self.correction](p, self.p_val)
        return DriftResult(
            is_drift=decision.reject, p_value=decision.p_value, statistic=float(t.max()),
            threshold=decision.threshold, p_val=self.p_val, feature_p_values=p,
            feature_statistics=t, n_reference=n, n_test=m, detector=self.name,
        )  # fmt: skip


def statistics(ref: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Cramér-von Mises ``T`` of every column; ``ref`` and ``xs`` are sorted column-wise.

    The mid-rank of a value ``v`` in the pooled sample is
    ``#{ref < v} + #{x < v} + (#{ref == v} + #{x == v} + 1) / 2``.
    """
    (n, d), m = ref.shape, xs.shape[0]
    u = np.empty(d)
    i, k = np.arange(1, n + 1), np.arange(1, m + 1)
    for j in range(d):
        a, b = ref[:, j], xs[:, j]
        a_lo, a_hi = np.searchsorted(a, a, "left"), np.searchsorted(a, a, "right")
        b_lo, b_hi = np.searchsorted(b, b, "left"), np.searchsorted(b, b, "right")
        ab_lo, ab_hi = np.searchsorted(b, a, "left"), np.searchsorted(b, a, "right")
        ba_lo, ba_hi = np.searchsorted(a, b, "left"), np.searchsorted(a, b, "right")
        rank_a = a_lo + ab_lo + (a_hi - a_lo + ab_hi - ab_lo + 1) / 2
        rank_b = ba_lo + b_lo + (ba_hi - ba_lo + b_hi - b_lo + 1) / 2
        u[j] = n * np.sum((rank_a - i) ** 2) + m * np.sum((rank_b - k) ** 2)
    nm, big_n = n * m, n + m
    return u / (nm * big_n) - (4 * nm - 1) / (6 * big_n)


def _asymptotic_p_values(t: np.ndarray, n: int, m: int) -> np.ndarray:
    """Anderson's normalisation (eq. 11, 14, 15) then the one-sample limit law, as scipy."""
    nm, big_n = n * m, n + m
    mean = (1 + 1 / big_n) / 6
    var = (big_n + 1) * (4 * nm * big_n - 3 * (n**2 + m**2) - 2 * nm) / (45 * big_n**2 * 4 * nm)
    tn = 1 / 6 + (t - mean) / math.sqrt(45 * var)
    p = np.ones_like(tn)
    big = tn >= 0.003  # below, the limit cdf is under 1.3e-18
    p[big] = np.clip(1.0 - cvm_limit_cdf(tn[big]), 0.0, 1.0)
    return p


def cvm_limit_cdf(x: np.ndarray) -> np.ndarray:
    """CDF of the limiting Cramér-von Mises law (Csörgő and Faraway 1996, eq. 1.2).

    Sums the series term by term, each point until its term falls below 1e-7 (as scipy).
    """
    x = np.asarray(x, dtype=np.float64)
    total, todo, k = np.zeros_like(x), np.ones(x.shape, dtype=bool), 0
    while todo.any():
        xt, y = x[todo], 4 * k + 1
        q = y**2 / (16 * xt)
        coef = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / math.pi**1.5
        term = coef / np.sqrt(xt) * math.sqrt(y) * np.exp(-q) * special.kv(0.25, q)
        total[todo] += term
        todo[todo] = np.abs(term) >= 1e-7
        k += 1
    return total
