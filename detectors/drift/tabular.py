"""Mixed numeric and categorical columns, one test each by schema: :class:`TabularDrift`."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np

from detectors._validation import Constraint, Interval, Options, SequenceOf
from detectors.drift.base import DriftDetector
from detectors.drift.chisquare import ChiSquareDrift
from detectors.drift.corrections import CORRECTIONS
from detectors.drift.cvm import CVMDrift
from detectors.drift.ks import KSDrift
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError

__all__ = ["TabularDrift"]

_NUMERIC = {"ks": KSDrift, "cvm": CVMDrift}


class TabularDrift(DriftDetector):
    """Feature-wise drift test of a table whose schema says which columns are categorical.

    Numeric columns get a two-sample Kolmogorov-Smirnov (or Cramér-von Mises) test,
    categorical ones a chi-squared test of their category counts; the p-values of all columns
    are then combined by one multiple-testing correction, as for
    :class:`~detectors.drift.KSDrift`.

    Parameters
    ----------
    schema : sequence of {"numeric", "categorical"}
        The kind of each column, in order.
    p_val : float, default=0.05
        Significance level of the batch decision, in (0, 1).
    correction : {"bonferroni", "fdr"}, default="bonferroni"
        Correction over all columns.
    numeric_test : {"ks", "cvm"}, default="ks"
        The test of numeric columns.
    unseen : {"error", "category"}, default="error"
        A categorical value never seen in the reference, as in
        :class:`~detectors.drift.ChiSquareDrift`.

    Attributes
    ----------
    numeric_, categorical_ : DriftDetector or None
        The fitted per-kind detectors (None where the schema has no such column).

    Notes
    -----
    ``feature_statistics`` holds each column's own statistic (KS distance, CvM ``T`` or
    chi-squared), which are not comparable across kinds; the batch ``statistic`` is the one of
    the column with the smallest p-value.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x_ref = np.column_stack([rng.normal(size=1000), rng.integers(0, 3, 1000)])
    >>> det = TabularDrift(schema=["numeric", "categorical"]).fit(x_ref)
    >>> x = np.column_stack([rng.normal(size=300), rng.choice(3, 300, p=[0.6, 0.2, 0.2])])
    >>> r = det.test(x)
    >>> r.is_drift, int(np.argmin(r.feature_p_values))
    (True, 1)
    """

    name = "tabular"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "schema": SequenceOf(Options(("numeric", "categorical"))),
        "p_val": Interval(Real, 0, 1, closed="neither"),
        "correction": Options(tuple(CORRECTIONS)),
        "numeric_test": Options(tuple(_NUMERIC)),
        "unseen": Options(("error", "category")),
    }

    def __init__(
        self,
        schema: tuple[str, ...],
        p_val: float = 0.05,
        correction: str = "bonferroni",
        numeric_test: str = "ks",
        unseen: str = "error",
    ) -> None:
        self.schema = tuple(schema) if isinstance(schema, list) else schema
        self.p_val = p_val
        self.correction = correction
        self.numeric_test = numeric_test
        self.unseen = unseen
        self._validate_params()

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        kinds = np.array(self.schema)
        return np.flatnonzero(kinds == "numeric"), np.flatnonzero(kinds == "categorical")

    def _fit(self, x_ref: np.ndarray) -> None:
        if x_ref.shape[1] != len(self.schema):
            raise DataError(f"x_ref has {x_ref.shape[1]} features, but the schema of "
                            f"{type(self).__name__} names {len(self.schema)} columns.")  # fmt: skip
        num, cat = self._columns()
        self.numeric_ = _NUMERIC[self.numeric_test]().fit(x_ref[:, num]) if num.size else None
        self.categorical_ = (
            ChiSquareDrift(unseen=self.unseen).fit(x_ref[:, cat]) if cat.size else None
        )

    def _test(self, x: np.ndarray) -> DriftResult:
        d = x.shape[1]
        p, stat = np.empty(d), np.empty(d)
        for cols, det in zip(self._columns(), (self.numeric_, self.categorical_), strict=True):
            if det is not None:
                r = det._test(x[:, cols])
                p[cols], stat[cols] = r.feature_p_values, r.feature_statistics
        decision = CORRECTIONS[self.correction](p, self.p_val)
        return DriftResult(
            is_drift=decision.reject, p_value=decision.p_value, statistic=stat[np.argmin(p)],
            threshold=decision.threshold, p_val=self.p_val, feature_p_values=p,
            feature_statistics=stat, n_reference=self.n_reference_, n_test=x.shape[0],
            detector=self.name,
        )  # fmt: skip
