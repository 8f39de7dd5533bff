"""Answers of drift detectors: :class:`DriftResult` (batch), :class:`OnlineDriftResult` (stream)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["DriftResult", "OnlineDriftResult"]


@dataclass(frozen=True, eq=False)
class DriftResult:
    """Outcome of ``detector.test(x)`` on one batch.

    Parameters
    ----------
    is_drift : bool
        Whether the batch drifted: ``p_value <= p_val`` for a test; ``statistic > threshold``
        for a distance (PSI, Jensen-Shannon, Wasserstein), which has no p-value.
    p_value : float or None
        The batch p-value, the value compared to ``p_val``. For a feature-wise test it is the
        corrected minimum over features (Bonferroni: ``min(1, d * min(p))``; Benjamini-Hochberg:
        the smallest adjusted p-value). None for a distance.
    statistic : float
        The batch statistic; for a feature-wise test or distance the largest feature statistic.
    threshold : float
        The threshold applied to each feature's p-value (``p_val / d`` for Bonferroni, the
        step-up cut-off for Benjamini-Hochberg); ``p_val`` for a multivariate test; the
        distance above which a feature drifted for a distance.
    p_val : float or None
        The significance level the detector was configured with; None for a distance.
    feature_p_values, feature_statistics : ndarray of shape (n_features,) or None
        Per-feature p-values and statistics, read-only; None for a multivariate test
        (``feature_p_values`` also None for a distance).
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
    p_value: float | None
    statistic: float
    threshold: float
    p_val: float | None
    feature_p_values: np.ndarray | None
    feature_statistics: np.ndarray | None
    n_reference: int
    n_test: int
    detector: str

    def __post_init__(self) -> None:
        _freeze(self, _DRIFT_TYPES, ("feature_p_values", "feature_statistics"))

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe Python values (arrays become lists of floats)."""
        return _to_dict(self)


@dataclass(frozen=True, eq=False)
class OnlineDriftResult:
    """Outcome of ``detector.update(x)`` on one event or a micro-batch of ``b`` events.

    Parameters
    ----------
    is_drift : bool
        Whether any step of this update crossed its threshold.
    statistic, threshold : float
        Statistic and threshold at the last step of this update; NaN while the detector's
        window is still filling after ``fit`` or ``reset`` (``to_dict`` gives None).
    step : int
        Events seen since ``fit`` or ``reset``, this update included.
    drift_step : int or None
        The first step of this update whose statistic exceeded its threshold, else None.
    step_statistics, step_thresholds : ndarray of shape (b,)
        Statistic and threshold at each step of this update, read-only (NaN while filling).
    ert : float
        The expected run time the thresholds were calibrated for.
    detector : str
        Short stable name of the detector, e.g. ``"mmd-online"``.

    Examples
    --------
    >>> r = OnlineDriftResult(is_drift=False, statistic=0.01, threshold=0.05, step=3,
    ...                       drift_step=None, step_statistics=[0.02, 0.01],
    ...                       step_thresholds=[0.05, 0.05], ert=500, detector="mmd-online")
    >>> r.to_dict()["step_statistics"], r.ert
    ([0.02, 0.01], 500.0)
    """

    is_drift: bool
    statistic: float
    threshold: float
    step: int
    drift_step: int | None
    step_statistics: np.ndarray
    step_thresholds: np.ndarray
    ert: float
    detector: str

    def __post_init__(self) -> None:  # spelled out: this runs once per event
        put = object.__setattr__
        put(self, "is_drift", bool(self.is_drift))
        put(self, "statistic", float(self.statistic))
        put(self, "threshold", float(self.threshold))
        put(self, "step", int(self.step))
        put(self, "drift_step", None if self.drift_step is None else int(self.drift_step))
        put(self, "ert", float(self.ert))
        put(self, "detector", str(self.detector))
        for name in ("step_statistics", "step_thresholds"):
            value = np.array(getattr(self, name), dtype=np.float64)  # a private copy, frozen
            value.setflags(write=False)
            put(self, name, value)

    @classmethod
    def _one_step(
        cls, statistic: float, threshold: float, step: int, ert: float, detector: str
    ) -> OnlineDriftResult:
        """The result of one step past the window's filling, from Python scalars.

        The per-event path of every online detector: the same fields as ``__init__`` would
        give, without its coercions and copies (the arrays are built here, then frozen).
        """
        statistic = float(statistic)
        pair = np.array((statistic, threshold))
        pair.setflags(write=False)  # and so are its views, for good
        drift = statistic > threshold
        result = object.__new__(cls)
        result.__dict__.update(
            is_drift=drift, statistic=statistic, threshold=threshold, step=step,
            drift_step=step if drift else None, step_statistics=pair[:1],
            step_thresholds=pair[1:], ert=ert, detector=detector,
        )  # fmt: skip
        return result

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe Python values: lists of floats, NaN as None."""
        out = _to_dict(self)
        for key in ("statistic", "threshold"):
            out[key] = None if math.isnan(out[key]) else out[key]
        for key in ("step_statistics", "step_thresholds"):
            out[key] = [None if math.isnan(v) else v for v in out[key]]
        return out


_DRIFT_TYPES = (("is_drift", bool), ("p_value", float), ("statistic", float),
                ("threshold", float), ("p_val", float), ("n_reference", int), ("n_test", int),
                ("detector", str))  # fmt: skip


def _freeze(result: Any, coerce: tuple[tuple[str, type], ...], arrays: tuple[str, ...]) -> None:
    """Coerce scalars (None stays None) and store read-only float64 copies of arrays."""
    for name, kind in coerce:
        value = getattr(result, name)
        object.__setattr__(result, name, None if value is None else kind(value))
    for name in arrays:
        value = getattr(result, name)
        if value is not None:
            value = np.array(value, dtype=np.float64)  # a private copy, then frozen
            value.setflags(write=False)
            object.__setattr__(result, name, value)


def _to_dict(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(result):
        value = getattr(result, f.name)
        out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
    return out
