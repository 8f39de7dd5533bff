"""Online feature-wise Cramér-von Mises drift detection to a target ERT: :class:`CVMDriftOnline`."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np

from detectors._validation import Constraint, Interval, Options, SequenceOf
from detectors.drift._cvm_ranks import normalised_cvm, null_ranks, window_cvm
from detectors.drift.mmd import SEED
from detectors.drift.online_base import OnlineDriftDetector, run_length_thresholds
from detectors.exceptions import DataError

__all__ = ["CVMDriftOnline"]


class CVMDriftOnline(OnlineDriftDetector):
    """Sliding-window two-sample Cramér-von Mises statistics per feature, calibrated to an ERT.

    For each feature and window size ``w``, the window's values have ranks ``k_i`` among the
    ``n`` reference values; Anderson's (1962) ``T = n w / (n + w)^2 sum_z (F_ref(z) - F_win(z))^2``
    over the pooled sample depends only on ``S1 = sum k_i``, ``S2 = sum k_i^2`` and
    ``M = sum_{i<j} max(k_i, k_j)``, which slide in O(w). Each ``T`` is normalised by its
    null mean and variance; the statistic of a feature is the largest over window sizes, and
    the detector alarms when any feature's exceeds the step's threshold. Being rank-based,
    the null law does not depend on the data: thresholds are simulated (Ross and Adams 2012)
    for a per-feature hazard ``1 - (1 - 1/ert)^(1/d)``, i.e. ``1/ert`` over ``d`` independent
    features (Cobb et al. 2022).

    Parameters
    ----------
    ert : float, default=500
        Expected run time: mean steps from the first full (smallest) window to a false alarm.
    window_sizes : sequence of int, default=(20, 50)
        Sliding windows; small ones react fast to large shifts, large ones see small shifts.
    n_bootstraps : int or None, default=None
        Simulated null streams; None uses ``max(1000, 20 / h)`` for the per-feature hazard
        ``h`` (about ``20 d ert``); fewer than ``10 / h`` warn that the ERT will fall short.
        Fitting costs O(n_bootstraps max(w) sum(w)).
    seed : int or None, default=0
        Seeds the simulation.

    Attributes
    ----------
    x_ref_sorted_ : ndarray of shape (n_reference, n_features)
        The reference, each column sorted.
    thresholds_ : ndarray of shape (2 max(w) - min(w),)
        Thresholds from step ``min(w)`` to ``2 max(w) - 1``; the last holds after.

    Notes
    -----
    An event costs O(d n) for its ranks plus O(d sum(w)) for the running sums; a micro-batch
    of ``b`` events costs O(d b log n + d max(w) sum(w)) with no Python loop over events. Features
    are assumed continuous (ties with the reference get mid-ranks) and, for the ERT to be
    met exactly, independent; correlated features give longer run times. The first
    ``min(w) - 1`` events after ``fit`` or ``reset`` only fill the windows.

    References
    ----------
    T. W. Anderson, "On the distribution of the two-sample Cramér-von Mises criterion",
    Ann. Math. Statist. 33 (1962), 1148-1159.
    G. J. Ross and N. M. Adams, "Two nonparametric control charts for detecting arbitrary
    distribution changes", J. Quality Technology 44 (2012), 102-116.
    O. Cobb, A. Van Looveren and J. Klaise, "Sequential multivariate change detection with
    calibrated and memoryless false detection rates", AISTATS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = CVMDriftOnline(ert=100, window_sizes=(10, 20), seed=0)
    >>> det = det.fit(rng.normal(size=(500, 2)))
    >>> r = det.update(rng.normal(size=(30, 2)))
    >>> r.is_drift, r.step
    (False, 30)
    >>> r = det.update(rng.normal(size=(30, 2)) * [1.0, 3.0])
    >>> r.is_drift, r.drift_step
    (True, 41)
    """

    name = "cvm-online"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "ert": Interval(Real, 1, None, closed="neither"),
        "window_sizes": SequenceOf(Interval(Integral, 2, None)),
        "n_bootstraps": [Options((None,)), Interval(Integral, 1, None)],
        "seed": SEED,
    }

    def __init__(
        self,
        ert: float = 500,
        window_sizes: tuple[int, ...] = (20, 50),
        n_bootstraps: int | None = None,
        seed: int | None = 0,
    ) -> None:
        self.ert = ert
        self.window_sizes = tuple(window_sizes) if isinstance(window_sizes, list) else window_sizes
        self.n_bootstraps = n_bootstraps
        self.seed = seed
        self._validate_params()

    @property
    def warmup(self) -> int:
        return min(self.window_sizes) - 1

    def _fit(self, x_ref: np.ndarray) -> None:
        n, d = x_ref.shape
        if n < max(self.window_sizes):
            raise DataError(f"{type(self).__name__} needs at least max(window_sizes) = "
                            f"{max(self.window_sizes)} reference rows; got {n}.")  # fmt: skip
        self.x_ref_sorted_ = np.sort(x_ref, axis=0)
        hazard = 1.0 - (1.0 - 1.0 / self.ert) ** (1.0 / d)
        n_boot = self.n_bootstraps or max(1000, int(np.ceil(20 / hazard)))
        if n_boot * hazard < 10:
            warnings.warn(
                f"{type(self).__name__}: {n_boot} bootstrap streams are too few to estimate a "
                f"per-feature tail of {hazard:.2g} for {d} features; the run time will fall "
                f"short of ert={self.ert}. Use n_bootstraps >= {int(np.ceil(10 / hazard))}.",
                RuntimeWarning, stacklevel=3,
            )  # fmt: skip
        rng = np.random.default_rng(self.seed)
        ranks = null_ranks(n_boot, 2 * max(self.window_sizes) - 1, n, rng)
        stats = np.full(ranks.shape, -np.inf)
        for w in self.window_sizes:
            stats[:, w - 1 :] = np.maximum(stats[:, w - 1 :], window_cvm(ranks, w, n))
        self.thresholds_ = run_length_thresholds(stats[:, self.warmup :], hazard)

    def _restore(self) -> None:
        self._ref_t = np.ascontiguousarray(self.x_ref_sorted_.T)
        self._sizes = np.array(self.window_sizes)
        super()._restore()

    def _reset(self) -> None:
        m, d, n_w = max(self.window_sizes), self.n_features_in_, len(self.window_sizes)
        self._ring = np.zeros((2 * m, d))  # ranks, written twice so the last q form a slice
        self._pos, self._count = 0, 0
        self._sums = np.zeros((3, n_w, d))  # S1, S2, M per window size and feature

    def _ranks(self, x: np.ndarray) -> np.ndarray:
        """Mid-ranks of each value among its feature's reference values, shape (b, d)."""
        if x.shape[0] == 1:
            below = (self._ref_t < x.T).sum(1)
            return (below + (self._ref_t <= x.T).sum(1))[None, :] / 2.0
        ref = self.x_ref_sorted_
        return np.stack([np.searchsorted(ref[:, j], x[:, j], "left")
                         + np.searchsorted(ref[:, j], x[:, j], "right")
                         for j in range(x.shape[1])], axis=1) / 2.0  # fmt: skip

    def _update(self, x: np.ndarray) -> np.ndarray:
        ranks = self._ranks(x)
        return np.array([self._push_one(ranks[0])]) if len(ranks) == 1 else self._push_many(ranks)

    def _update_one(self, x: np.ndarray) -> float:
        return self._push_one(self._ranks(x[None])[0])

    def _push_one(self, k: np.ndarray) -> float:
        """One event: slide every window by one rank, O(d sum(w))."""
        n, m = self.x_ref_sorted_.shape[0], max(self.window_sizes)
        sums, ring = self._sums, self._ring
        end = self._pos + m  # ring[end - q : end] are the last q ranks
        for j, w in enumerate(self.window_sizes):
            held = min(self._count, w)
            if held == w:  # the oldest leaves this window
                old, held = ring[end - w], w - 1
                sums[:, j] -= (old, old * old, np.maximum(old, ring[end - held : end]).sum(0))
            sums[:, j] += (k, k * k, np.maximum(k, ring[end - held : end]).sum(0))
        ring[self._pos] = ring[self._pos + m] = k
        self._pos, self._count = (self._pos + 1) % m, self._count + 1
        sizes = self._sizes
        z = normalised_cvm(sums[0], sums[1], sums[2], n, sizes[:, None])
        full = sizes <= self._count
        return float(z[full].max()) if full.any() else np.nan

    def _push_many(self, ranks: np.ndarray) -> np.ndarray:
        """A micro-batch: every window of the history-plus-batch sequence at once."""
        n, m, b = self.x_ref_sorted_.shape[0], max(self.window_sizes), ranks.shape[0]
        held = min(self._count, m - 1)
        end = self._pos + m
        seq = np.concatenate([self._ring[end - held : end], ranks])  # (held + b, d)
        best = np.full(b, -np.inf)
        for w in self.window_sizes:
            if held + b >= w:  # windows ending at the batch's events, full ones only
                z = window_cvm(seq.T, w, n).max(0)  # ends at positions w..held + b
                first = max(0, w - held - 1)
                best[first:] = np.maximum(best[first:], z[held + first + 1 - w :])
        for k in ranks[-m:]:  # rebuild the ring and running sums from the last m ranks
            self._ring[self._pos] = self._ring[self._pos + m] = k
            self._pos = (self._pos + 1) % m
        self._count += b
        end = self._pos + m
        for j, w in enumerate(self.window_sizes):
            last = self._ring[end - min(self._count, w) : end]
            pairs = np.triu(np.ones((len(last), len(last)), dtype=bool), 1)
            mx = np.maximum(last[:, None, :], last[None, :, :])[pairs].sum(0)
            self._sums[:, j] = last.sum(0), (last * last).sum(0), mx
        return np.where(np.isfinite(best), best, np.nan)
