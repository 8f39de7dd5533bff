"""What every online drift detector shares: ``fit``, ``update`` one event or a micro-batch,
``reset``, and thresholds calibrated to an expected run time.

A detector implements ``_fit(x_ref)`` (learned attributes, including ``thresholds_``, the
threshold of each step once its window is full, the last one holding from then on),
``_reset()`` (the stream state, private attributes), ``_update(x) -> ndarray`` (one statistic
per row of ``x``, NaN while the window fills) and ``warmup`` (the steps that only fill the
window); it may add ``_update_one(x) -> float`` for one event of shape (n_features,) once the
window is full, the per-event path, which then touches no array it does not need. The base
checks inputs, counts steps and compares statistics to thresholds.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np

from detectors._persist import Persistable
from detectors._validation import check_array
from detectors.drift.result import OnlineDriftResult
from detectors.exceptions import DataError

__all__ = ["OnlineDriftDetector", "run_length_thresholds"]


class OnlineDriftDetector(Persistable):
    """Base class of online drift detectors: ``fit(x_ref)``, then ``update(x)`` per event.

    After ``fit`` or ``reset`` the first ``warmup`` events only fill the test window: their
    statistic is NaN and they never alarm. The expected run time (ERT) is the mean number of
    steps from the first full window (step ``warmup + 1``) to the first alarm on a stream
    without drift. Thresholds are set so that at every step, among bootstrap streams with no
    alarm yet, a fraction ``1 / ert`` raises one: the run time is then (close to) geometric
    with mean ``ert`` (Cobb et al. 2022).

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_steps,)
        Threshold at steps ``warmup + 1``, ``warmup + 2``, ...; the last holds for every later
        step.
    n_features_in_, n_reference_ : int
        Shape of the reference.
    """

    name: ClassVar[str] = ""

    @property
    def step(self) -> int:
        """Events seen since ``fit`` or ``reset``."""
        return self._t

    @property
    def warmup(self) -> int:
        """Events after ``fit`` or ``reset`` that only fill the window (no statistic)."""
        raise NotImplementedError

    def fit(self, x_ref: Any) -> Self:
        """Learn the reference and calibrate thresholds; ``x_ref`` has shape (n, n_features)."""
        self._validate_params()
        x_ref = check_array(x_ref, name="x_ref", caller=type(self).__name__, min_rows=2)
        self._fit(x_ref)
        self.n_features_in_ = x_ref.shape[1]
        self.n_reference_ = x_ref.shape[0]
        self._restore()
        return self

    def _restore(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new stream: step 0, the test window back to its initial state."""
        self._require_fitted()
        self._t = 0
        self._thresholds = self.thresholds_.tolist()  # Python floats for the per-event path
        self._reset()

    def update(self, x: Any) -> OnlineDriftResult:
        """Feed one event, shape (n_features,), or a micro-batch, shape (b, n_features).

        Events are processed in row order, each one step; the result reports every step.
        """
        self._require_fitted()
        x = self._check_events(x)
        b, warm = x.shape[0], self.warmup
        if b == 1 and self._t >= warm:  # the per-event path: Python floats, no array bookkeeping
            stat = self._update_one(x[0])
            self._t = t = self._t + 1
            threshold = self._thresholds[min(t - warm, len(self._thresholds)) - 1]
            return OnlineDriftResult._one_step(stat, threshold, t, float(self.ert), self.name)
        stats = self._update(x)
        steps = np.arange(self._t + 1, self._t + 1 + b)
        self._t += b
        i = np.clip(steps - warm, 0, self.thresholds_.size)
        thresholds = np.where(i > 0, self.thresholds_[np.maximum(i, 1) - 1], np.nan)
        above = stats > thresholds  # False while the window fills (NaN)
        first = int(steps[above.argmax()]) if above.any() else None
        return OnlineDriftResult(
            is_drift=first is not None, statistic=stats[-1], threshold=thresholds[-1],
            step=self._t, drift_step=first, step_statistics=stats, step_thresholds=thresholds,
            ert=self.ert, detector=self.name,
        )  # fmt: skip

    def _check_events(self, x: Any) -> np.ndarray:
        """Events as a finite float64 array of shape (b, n_features); 1-D is one event."""
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            arr = x  # check_array says why
        else:
            if arr.ndim <= 1:
                arr = arr.reshape(1, -1)
            ok = arr.ndim == 2 and arr.shape[0] > 0 and arr.shape[1] == self.n_features_in_
            if ok and math.isfinite(np.add.reduce(arr, None)):  # NaN or inf: a non-finite sum
                return arr
        arr = check_array(arr, name="x", caller=type(self).__name__, min_rows=1)
        if arr.shape[1] == self.n_features_in_:
            return arr  # finite after all: only the sum overflowed
        raise DataError(
            f"x has {arr.shape[1]} features, but {type(self).__name__} was fitted with "
            f"{self.n_features_in_} features."
        )

    def _fit(self, x_ref: np.ndarray) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _update(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_one(self, x: np.ndarray) -> float:
        """The statistic after one event of shape (n_features,), its window full."""
        return float(self._update(x[None])[0])


def run_length_thresholds(stats: np.ndarray, hazard: float) -> np.ndarray:
    """Thresholds from bootstrap statistics of shape (n_streams, n_steps).

    At step ``t`` the threshold is the ``1 - hazard`` quantile of the statistics of the
    streams that raised no alarm before ``t``; streams above it are then dropped (Cobb et al.
    2022, Alg. 1). Every step thus has a false-alarm hazard of ``hazard`` (``1 / ert``).

    Examples
    --------
    >>> stats = np.random.default_rng(0).normal(size=(10_000, 3))
    >>> run_length_thresholds(stats, hazard=0.05).round(2)
    array([1.65, 1.62, 1.65])
    """
    alive = np.ones(stats.shape[0], dtype=bool)
    thresholds = np.empty(stats.shape[1])
    for t in range(stats.shape[1]):
        thresholds[t] = np.quantile(stats[alive, t], 1.0 - hazard)
        alive &= stats[:, t] <= thresholds[t]
    return thresholds
