"""Feature-wise two-sample Kolmogorov-Smirnov drift test: :class:`KSDrift`."""

from __future__ import annotations

import math
import warnings
from numbers import Real
from typing import ClassVar

import numpy as np
from scipy import special, stats

from detectors._validation import Constraint, Interval, Options
from detectors.drift.base import DriftDetector
from detectors.drift.corrections import CORRECTIONS
from detectors.drift.result import DriftResult

try:  # scipy's exact two-sample null (Hodges 1958); private, so guarded
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - only on a scipy that moved it
    _attempt_exact_2kssamp = None

__all__ = ["KSDrift"]

_MAX_AUTO_N = 10_000  # as in scipy.stats.ks_2samp: "auto" is exact up to this many rows
_CACHE_ENTRIES = 100_000  # memoised exact p-values per detector, at most


class KSDrift(DriftDetector):
    """Two-sample Kolmogorov-Smirnov test on every feature, with a multiple-testing correction.

    For feature ``j``, with empirical CDFs ``F_ref`` of the reference and ``F_x`` of the batch,
    ``D_j = sup_t |F_ref(t) - F_x(t)|`` (``sup (F_ref - F_x)`` for ``"greater"``,
    ``sup (F_x - F_ref)`` for ``"less"``). Statistics and p-values equal those of
    ``scipy.stats.ks_2samp(x_ref[:, j], x[:, j], alternative, method)``: the exact null
    distribution while both samples have at most 10,000 rows under ``"auto"``, Smirnov's
    asymptotic one beyond. The per-feature p-values are combined by ``correction``.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level of the batch decision, in (0, 1).
    correction : {"bonferroni", "fdr"}, default="bonferroni"
        Bonferroni (family-wise error) or Benjamini-Hochberg (false discovery rate).
    alternative : {"two-sided", "less", "greater"}, default="two-sided"
        As in ``scipy.stats.ks_2samp`` with the reference as first sample: ``"greater"``
        tests whether the reference CDF lies above the batch's (batch values larger).
    method : {"auto", "exact", "asymp"}, default="auto"
        How p-values are computed, as in ``scipy.stats.ks_2samp``.

    Attributes
    ----------
    x_ref_sorted_ : ndarray of shape (n_reference, n_features)
        The reference, each column sorted (stored column-major for fast searches).
    n_features_in_, n_reference_ : int
        Shape of the reference.

    Notes
    -----
    ``test`` sorts the batch, finds each batch value's rank in the sorted reference with
    ``np.searchsorted`` (O(n log n_ref) per feature, the reference is never re-sorted) and
    reads both one-sided statistics off those ranks. The exact p-values are scipy's
    (Hodges 1958), computed once per feature; asymptotic ones are vectorised over features.
    The one-sided exact null with unequal sample sizes is slow in scipy (about 0.1 s per
    feature for a few hundred rows); prefer ``method="asymp"`` for one-sided tests of such
    sizes on a hot path.

    References
    ----------
    A. N. Kolmogorov, "Sulla determinazione empirica di una legge di distribuzione",
    Giornale dell'Istituto Italiano degli Attuari 4 (1933), 83-91.
    N. Smirnov, "Table for estimating the goodness of fit of empirical distributions",
    Ann. Math. Statist. 19 (1948), 279-281.
    J. L. Hodges, "The significance probability of the Smirnov two-sample test",
    Arkiv för Matematik 3 (1958), 469-486.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = KSDrift(p_val=0.05).fit(rng.normal(size=(1000, 4)))
    >>> r = det.test(rng.normal(size=(200, 4)))
    >>> r.is_drift, round(r.p_value, 3)
    (False, 0.255)
    >>> shifted = rng.normal(size=(200, 4)) + np.array([0.0, 0.5, 0.0, 0.0])
    >>> r = det.test(shifted)
    >>> r.is_drift, int(np.argmin(r.feature_p_values)), r.threshold
    (True, 1, 0.0125)
    """

    name = "ks"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_val": Interval(Real, 0, 1, closed="neither"),
        "correction": Options(tuple(CORRECTIONS)),
        "alternative": Options(("two-sided", "less", "greater")),
        "method": Options(("auto", "exact", "asymp")),
    }

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        alternative: str = "two-sided",
        method: str = "auto",
    ) -> None:
        self.p_val = p_val
        self.correction = correction
        self.alternative = alternative
        self.method = method
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        self.x_ref_sorted_ = np.asfortranarray(np.sort(x_ref, axis=0))

    def _test(self, x: np.ndarray) -> DriftResult:
        ref = self.x_ref_sorted_
        n1, n2 = ref.shape[0], x.shape[0]
        mode = _mode(n1, n2, self.method)
        if mode == "exact" and _attempt_exact_2kssamp is None:  # the public, slower path
            alt, method = self.alternative, self.method
            res = [stats.ks_2samp(ref[:, j], x[:, j], alt, method) for j in range(x.shape[1])]
            d, p = np.array([r.statistic for r in res]), np.array([r.pvalue for r in res])
        else:
            d = _statistics(ref, x, self.alternative)
            cache = self.__dict__.setdefault("_exact_p_cache", {})
            d, p = _p_values(d, n1, n2, self.alternative, mode, self.method == "exact", cache)
        decision = CORRECTIONS[self.correction](p, self.p_val)
        return DriftResult(
            is_drift=decision.reject, p_value=decision.p_value, statistic=float(d.max()),
            threshold=decision.threshold, p_val=self.p_val, feature_p_values=p,
            feature_statistics=d, n_reference=n1, n_test=n2, detector=self.name,
        )  # fmt: skip


def _statistics(ref: np.ndarray, x: np.ndarray, alternative: str) -> np.ndarray:
    """KS statistics of every column of the batch ``x``; ``ref`` is sorted column-wise and
    Fortran-ordered (each feature contiguous).

    ``F_ref - F_x`` peaks just below a batch value and ``F_x - F_ref`` at one, so both sups
    are read off the ranks of the batch values: #{ref < t}, #{ref <= t}, #{x < t}, #{x <= t}.
    The batch is sorted feature-major, a contiguous row per feature, so that every
    ``searchsorted`` reads and writes contiguous memory (a fifth faster than column views).
    """
    n1, (n2, d) = ref.shape[0], x.shape
    xs = x.T.copy()  # (d, n2), C-ordered
    xs.sort(axis=1)
    cols = np.arange(n2)
    below_x, upto_x = cols, cols + 1
    new = np.ones(xs.shape, dtype=bool)
    np.not_equal(xs[:, 1:], xs[:, :-1], out=new[:, 1:])
    if not new.all():  # ties in the batch: ranks of the first and last of each run
        end = np.ones(xs.shape, dtype=bool)
        end[:, :-1] = new[:, 1:]
        below_x = np.maximum.accumulate(np.where(new, cols, 0), axis=1)
        upto_x = np.minimum.accumulate(np.where(end, cols + 1, n2)[:, ::-1], axis=1)[:, ::-1]
    below_ref = np.empty((d, n2), dtype=np.intp)
    for j in range(d):
        below_ref[j] = np.searchsorted(ref[:, j], xs[j], side="left")
    # a batch value found in ref: its first match sits at below_ref (flat index in F order)
    at = np.minimum(below_ref, n1 - 1)
    at += (np.arange(d) * n1)[:, None]
    tied = ref.ravel(order="F").take(at) == xs
    upto_ref = below_ref
    if tied.any():
        upto_ref = below_ref.copy()
        for j in np.flatnonzero(tied.any(axis=1)):
            upto_ref[j] = np.searchsorted(ref[:, j], xs[j], side="right")
    d_plus = np.maximum((below_ref / n1 - below_x / n2).max(axis=1), 0.0)  # sup F_ref - F_x
    d_minus = np.maximum((upto_x / n2 - upto_ref / n1).max(axis=1), 0.0)  # sup F_x - F_ref
    if alternative == "greater":
        return d_plus
    return d_minus if alternative == "less" else np.maximum(d_plus, d_minus)


def _mode(n1: int, n2: int, method: str) -> str:
    """The null distribution ``scipy.stats.ks_2samp`` would try for these sizes."""
    if method == "auto":
        return "exact" if max(n1, n2) <= _MAX_AUTO_N else "asymp"
    g = math.gcd(n1, n2)
    if method == "exact" and n1 // g >= np.iinfo(np.int32).max / (n2 // g):
        return "asymp"  # the lattice of attainable D values is too fine
    return method


def _p_values(
    d: np.ndarray,
    n1: int,
    n2: int,
    alternative: str,
    mode: str,
    strict: bool,
    cache: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics (on the exact lattice when exact) and p-values, as ``ks_2samp`` gives.

    Where the exact computation is impossible or fails, scipy falls back to the asymptotic
    distribution, and so do we; ``strict`` (``method="exact"``) makes that a warning.

    Exact D values lie on the lattice ``k / lcm(n1, n2)``, so a detector that tests window
    after window of one size meets the same few values again and again: ``cache`` memoises
    the exact null's answer per ``(n1, n2, k, alternative)`` (the same numbers, computed
    once; cleared beyond ``_CACHE_ENTRIES``).
    """
    p = np.full(d.shape, np.nan)
    if mode == "exact":
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        d = np.round(d * lcm) / lcm  # scipy reports D on the lattice of attainable values
        p[d == 0] = 1.0
        # One-sided, unequal sizes: scipy's path count fails whenever C(n1+n2, n1) overflows.
        hopeless = alternative != "two-sided" and n1 != n2 and np.isinf(special.binom(n1 + n2, n1))
        if cache is None:
            cache = {}
        elif len(cache) > _CACHE_ENTRIES:
            cache.clear()
        for j in [] if hopeless else np.flatnonzero(d > 0):
            key = (n1, n2, round(d[j] * lcm), alternative)
            if key not in cache:
                cache[key] = _attempt_exact_2kssamp(n1, n2, g, d[j], alternative)
            ok, _, prob = cache[key]
            if ok:
                p[j] = prob
    todo = np.isnan(p)
    if todo.any():
        if strict:
            warnings.warn(
                f"Exact KS p-values are not possible for {todo.sum()} feature(s) with sample "
                f"sizes {n1} and {n2}; using the asymptotic distribution for them.",
                RuntimeWarning, stacklevel=4,
            )  # fmt: skip
        p[todo] = _asymptotic(d[todo], n1, n2, alternative)
    return d, np.clip(p, 0.0, 1.0)


def _asymptotic(d: np.ndarray, n1: int, n2: int, alternative: str) -> np.ndarray:
    """Smirnov's limit (two-sided) or Hodges' eq. 5.3 (one-sided), as in ``ks_2samp``."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    if alternative == "two-sided":
        return stats.kstwo.sf(d, np.round(en))
    z = np.sqrt(en) * d
    return np.exp(-2 * z**2 - 2 * z * (m + 2 * n) / np.sqrt(m * n * (m + n)) / 3.0)
