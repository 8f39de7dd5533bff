"""Feature-wise chi-squared drift test for categorical columns: :class:`ChiSquareDrift`."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from scipy import stats

from detectors._validation import Constraint, Interval, Options
from detectors.drift.base import DriftDetector
from detectors.drift.corrections import CORRECTIONS
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError

__all__ = ["ChiSquareDrift"]


class ChiSquareDrift(DriftDetector):
    """Chi-squared test of homogeneity on every categorical feature, with a correction.

    Each feature holds category codes (any finite numbers, compared exactly). For feature ``j``
    the 2 x K table stacks the reference's and the batch's counts of the K reference categories;
    with expected counts ``E = row total * column total / N``, ``X^2 = sum (O - E)^2 / E`` has
    ``K - 1`` degrees of freedom. Statistics and p-values equal
    ``scipy.stats.chi2_contingency(table, correction=yates)`` (Pearson 1900), Yates' continuity
    correction applying, as in scipy, only when there is one degree of freedom.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level of the batch decision, in (0, 1).
    correction : {"bonferroni", "fdr"}, default="bonferroni"
        Bonferroni (family-wise error) or Benjamini-Hochberg (false discovery rate).
    unseen : {"error", "category"}, default="error"
        A batch value never seen in the reference: ``"error"`` raises
        :class:`~detectors.exceptions.DataError` naming it; ``"category"`` counts all such
        values in one extra column whose reference count is 0, which is itself evidence of
        drift.
    yates : bool, default=True
        Yates' continuity correction for features with two categories (scipy's default).

    Attributes
    ----------
    categories_ : ndarray of shape (n_categories_total,)
        Sorted reference categories of every feature, one after the other.
    category_counts_ : ndarray of shape (n_categories_total,)
        Reference count of each of them.
    category_offsets_ : ndarray of shape (n_features + 1,)
        Feature ``j`` owns ``categories_[category_offsets_[j]:category_offsets_[j + 1]]``.

    Notes
    -----
    A feature with a single category everywhere has no degree of freedom: statistic 0, p-value
    1. NaN is rejected like everywhere else; encode a missing value as a category of its own.

    References
    ----------
    K. Pearson, "On the criterion that a given system of deviations from the probable ...",
    Philosophical Magazine 50 (1900), 157-175.
    F. Yates, "Contingency tables involving small numbers and the chi-squared test",
    Suppl. J. R. Statist. Soc. 1 (1934), 217-235.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ChiSquareDrift().fit(rng.integers(0, 4, size=(1000, 3)))
    >>> r = det.test(rng.integers(0, 4, size=(300, 3)))
    >>> r.is_drift, round(r.p_value, 3)
    (False, 0.282)
    >>> x = rng.choice(4, size=(300, 3), p=[0.4, 0.2, 0.2, 0.2])
    >>> r = det.test(x)
    >>> r.is_drift, r.feature_statistics.round(1).tolist()
    (True, [45.9, 46.2, 20.3])
    """

    name = "chisquare"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_val": Interval(Real, 0, 1, closed="neither"),
        "correction": Options(tuple(CORRECTIONS)),
        "unseen": Options(("error", "category")),
        "yates": Options((True, False)),
    }

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        unseen: str = "error",
        yates: bool = True,
    ) -> None:
        self.p_val = p_val
        self.correction = correction
        self.unseen = unseen
        self.yates = yates
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        cats, counts = zip(*(np.unique(col, return_counts=True) for col in x_ref.T), strict=True)
        self.categories_ = np.concatenate(cats)
        self.category_counts_ = np.concatenate(counts).astype(np.float64)
        self.category_offsets_ = np.cumsum([0, *(c.size for c in cats)])

    def _test(self, x: np.ndarray) -> DriftResult:
        d = x.shape[1]
        chi2, p = np.zeros(d), np.ones(d)
        for j in range(d):
            lo, hi = self.category_offsets_[j], self.category_offsets_[j + 1]
            counts = self._counts(x[:, j], j, lo, hi)
            ref = np.zeros(counts.size)  # a column of unseen values has reference count 0
            ref[: hi - lo] = self.category_counts_[lo:hi]
            table = np.stack([ref, counts])
            if table.shape[1] > 1:
                chi2[j], p[j] = _chi2_homogeneity(table, self.yates)
        decision = CORRECTIONS[self.correction](p, self.p_val)
        return DriftResult(
            is_drift=decision.reject, p_value=decision.p_value, statistic=float(chi2.max()),
            threshold=decision.threshold, p_val=self.p_val, feature_p_values=p,
            feature_statistics=chi2, n_reference=self.n_reference_, n_test=x.shape[0],
            detector=self.name,
        )  # fmt: skip

    def _counts(self, col: np.ndarray, j: int, lo: int, hi: int) -> np.ndarray:
        """Batch counts of feature ``j``'s reference categories, then of unseen values if any."""
        cats = self.categories_[lo:hi]
        idx = np.searchsorted(cats, col)
        seen = cats[np.minimum(idx, cats.size - 1)] == col
        counts = np.bincount(idx[seen], minlength=cats.size).astype(np.float64)
        if seen.all():
            return counts
        if self.unseen == "error":
            value = col[~seen][0].item()
            raise DataError(
                f"x has value {value!r} in feature {j}, a category never seen in the reference "
                f"of {type(self).__name__}; pass unseen='category' to count such values as drift."
            )
        return np.append(counts, (~seen).sum())


def _chi2_homogeneity(table: np.ndarray, yates: bool) -> tuple[float, float]:
    """Pearson's statistic and p-value of a 2 x K table, as ``scipy.stats.chi2_contingency``."""
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    dof = table.shape[1] - 1
    observed = table
    if dof == 1 and yates:  # move each count half a unit towards its expectation
        diff = expected - observed
        observed = observed + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return chi2, float(stats.chi2.sf(chi2, dof))
