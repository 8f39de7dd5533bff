"""The answer of a batch drift detector to one batch: :class:`DriftResult`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["DriftResult"]


@dataclass(frozen=True, eq=False)
class DriftResult:
    """Outcome of ``detector.test(x)`` on one batch.

    Parameters
    ----------
    is_drift : bool
        Whether the batch drifted: ``p_value <= p_val``.
    p_value : float
        The batch p-value, the value compared to ``p_val``. For a feature-wise test it is the
        corrected minimum over features (Bonferroni: ``min(1, d * min(p))``; Benjamini-Hochberg:
        the smallest adjusted p-value).
    statistic : float
        The batch statistic; for a feature-wise test the largest feature statistic.
    threshold : float
        The threshold applied to each feature's p-value (``p_val / d`` for Bonferroni, the
        step-up cut-off for Benjamini-Hochberg); ``p_val`` for a multivariate test.
    p_val : float
        The significance level the detector was configured with.
    feature_p_values, feature_statistics : ndarray of shape (n_features,) or None
        Per-feature p-values and statistics, read-only; None for a multivariate test.
    n_reference, n_test : int
        Rows in the reference and in the tested batch.
    detector : str
        Short stable name of the detector, e.g. ``"ks"`` (results carry ``drift:ks`` flags).

    Notes
    -----
    Instances are immutable and compare by identity (they hold arrays); compare
    :meth:`to_dict` outputs to compare values.

    Examples
    --------
    >>> r = DriftResult(is_drift=True, p_value=0.003, statistic=0.21, threshold=0.025,
    ...                 p_val=0.05, feature_p_values=np.array([0.0015, 0.6]),
    ...                 feature_statistics=np.array([0.21, 0.05]), n_reference=1000,
    ...                 n_test=200, detector="ks")
    >>> r.to_dict()["feature_p_values"]
    [0.0015, 0.6]
    """

    is_drift: bool
    p_value: float
    statistic: float
    threshold: float
    p_val: float
    feature_p_values: np.ndarray | None
    feature_statistics: np.ndarray | None
    n_reference: int
    n_test: int
    detector: str

    def __post_init__(self) -> None:
        coerce = {"is_drift": bool, "n_reference": int, "n_test": int, "detector": str}
        for name in ("p_value", "statistic", "threshold", "p_val"):
            coerce[name] = float
        for name, kind in coerce.items():
            object.__setattr__(self, name, kind(getattr(self, name)))
        for name in ("feature_p_values", "feature_statistics"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=np.float64)  # a private copy, then frozen
                value.setflags(write=False)
                object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe Python values (arrays become lists of floats)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out
