"""Online MMD drift detector calibrated to an expected run time: :class:`MMDDriftOnline`."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from detectors._validation import Constraint, Interval, Options
from detectors.drift.kernels import bootstrap_window_mmd2, gaussian_kernel_np, median_heuristic
from detectors.drift.mmd import PREPROCESS, SEED, SIGMA
from detectors.drift.online_base import OnlineDriftDetector, run_length_thresholds
from detectors.drift.preprocess import Preprocessor
from detectors.exceptions import DataError

__all__ = ["MMDDriftOnline"]

_CHUNK = 256  # bootstrap streams per vectorised chunk in fit
_ZERO = np.zeros((), dtype=np.float32)  # a 0-d operand: ufuncs resolve it faster than 0.0


class MMDDriftOnline(OnlineDriftDetector):
    """Sliding-window MMD² against the reference, thresholds calibrated to an ERT.

    At step ``t >= W`` the window ``Y_t`` holds the last ``W`` events and the statistic is
    ``MMD²_t = mean_{i!=j} k(r_i, r_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(r_i, y_j)``
    against a sub-reference ``R`` with a Gaussian kernel (Gretton et al. 2012). Thresholds for
    steps W..2W-1 come from bootstrap streams drawn without replacement from the reference, so
    that the false-alarm hazard is ``1 / ert`` at every step (Cobb et al. 2022). The first
    ``W - 1`` events after ``fit`` or ``reset`` only fill the window; the ERT counts from
    step ``W``.

    Parameters
    ----------
    ert : float, default=500
        Expected run time: mean number of steps from the first full window to a false
        alarm, > 1.
    window_size : int, default=50
        Events in the test window ``W``, >= 2; the reference needs ``2 W + 1`` rows.
    n_bootstraps : int or None, default=None
        Bootstrap streams for calibration; None uses ``max(1000, 20 * ert)``. Each estimates
        a ``1 - 1/ert`` quantile, so it should be well above ``ert``.
    sigma : float or None, default=None
        Kernel bandwidth; None fits the median heuristic on the reference.
    preprocess : Preprocessor or None, default=None
        Maps events to a low dimension first; fitted on the reference, saved with it.
    seed : int or None, default=0
        Seeds the bandwidth subsample, the reference split and the bootstrap.

    Attributes
    ----------
    center_ : ndarray of shape (n_dims,)
        The reference mean; events are centred on it (the kernel is translation-invariant),
        which keeps the float32 per-event products exact to ~1e-7 whatever the offset.
    x_ref_ : ndarray of shape (n_reference - 2W + 1, n_dims)
        The sub-reference ``R``, centred; bootstrap streams draw the other ``2W - 1`` rows
        from the reference, so the bootstrap's sub-references have the same size.
    ref_term_, sigma_ : float
        ``mean_{i!=j} k(r_i, r_j)`` and the bandwidth.
    thresholds_ : ndarray of shape (W,)
        Thresholds of steps W..2W-1; the last holds after.

    Notes
    -----
    An update costs O(n_ref d + W d): one float32 product of the event with the sub-reference
    and the window (a ring buffer), then running sums updated in O(W); nothing is recomputed
    over the whole window. Each event's kernel sum with the events that came after it is
    kept, which is exactly what leaves the window's pair sum when it becomes the oldest.
    Fitting costs O(n_ref^2 d) for the reference kernel matrix and O(n_bootstraps W^2) for the
    bootstrap. Loading a saved detector starts a new stream, as ``reset()`` does.

    References
    ----------
    O. Cobb, A. Van Looveren and J. Klaise, "Sequential multivariate change detection with
    calibrated and memoryless false detection rates", AISTATS 2022.
    A. Gretton et al., "A kernel two-sample test", JMLR 13 (2012), 723-773.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> det = MMDDriftOnline(ert=200, window_size=10, seed=0).fit(rng.normal(size=(300, 3)))
    >>> r = det.update(rng.normal(size=(40, 3)))      # a micro-batch of 40 events
    >>> r.is_drift, r.step
    (False, 40)
    >>> r = det.update(rng.normal(size=(40, 3)) + 1.0)
    >>> r.is_drift, r.drift_step
    (True, 46)
    """

    name = "mmd-online"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "ert": Interval(Real, 1, None, closed="neither"),
        "window_size": Interval(Integral, 2, None),
        "n_bootstraps": [Options((None,)), Interval(Integral, 1, None)],
        "sigma": SIGMA,
        "preprocess": PREPROCESS,
        "seed": SEED,
    }

    def __init__(
        self,
        ert: float = 500,
        window_size: int = 50,
        n_bootstraps: int | None = None,
        sigma: float | None = None,
        preprocess: Preprocessor | None = None,
        seed: int | None = 0,
    ) -> None:
        self.ert = ert
        self.window_size = window_size
        self.n_bootstraps = n_bootstraps
        self.sigma = sigma
        self.preprocess = preprocess
        self.seed = seed
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        w, n = self.window_size, x_ref.shape[0]
        if n < 2 * w + 1:
            raise DataError(f"{type(self).__name__} with window_size={w} needs at least "
                            f"{2 * w + 1} reference rows; got {n}.")  # fmt: skip
        if self.preprocess is not None:
            x_ref = self.preprocess.fit(x_ref).transform(x_ref)
        self.center_ = x_ref.mean(0)
        x_ref = x_ref - self.center_
        rng = np.random.default_rng(self.seed)
        self.sigma_ = float(self.sigma) if self.sigma is not None else median_heuristic(x_ref, rng)
        k = gaussian_kernel_np(x_ref, x_ref, self.sigma_)
        n_sub = n - 2 * w + 1
        split = rng.permutation(n)
        self.x_ref_ = x_ref[split[:n_sub]]
        k_sub = k[np.ix_(split[:n_sub], split[:n_sub])]
        self.ref_term_ = float((k_sub.sum() - np.trace(k_sub)) / (n_sub * (n_sub - 1)))
        n_boot = self.n_bootstraps or max(1000, int(np.ceil(20 * self.ert)))
        sums = (k.sum(1), k.sum() - np.trace(k))
        chunks = [min(_CHUNK, n_boot - i) for i in range(0, n_boot, _CHUNK)]
        stats = np.concatenate([bootstrap_window_mmd2(k, sums, n_sub, w, c, rng) for c in chunks])
        self.thresholds_ = run_length_thresholds(stats, 1.0 / self.ert)

    @property
    def warmup(self) -> int:
        return self.window_size - 1

    def _restore(self) -> None:
        # k(x, y) = exp(g ||x||^2 + g ||y||^2 - 2 g x.y), g = -1 / (2 sigma^2). The sub-reference
        # and the window's W slots share one operand (columns -2 g y, offsets g ||y||^2), so an
        # event costs one float32 product and one exp against both.
        self._gamma = -0.5 / self.sigma_**2
        self._gamma32, self._scale32 = np.float32(self._gamma), np.float32(-2.0 * self._gamma)
        ref, w = self.x_ref_.astype(np.float32), self.window_size
        self._ops = np.zeros((ref.shape[1], ref.shape[0] + w), dtype=np.float32)
        self._ops[:, : ref.shape[0]] = self._scale32 * ref.T
        self._slots = [self._ops[:, ref.shape[0] + s] for s in range(w)]  # views, one per slot
        self._offs = np.zeros(ref.shape[0] + w, dtype=np.float32)
        self._offs[: ref.shape[0]] = self._gamma * (ref * ref).sum(1)
        super()._restore()

    def _reset(self) -> None:
        w, n_sub = self.window_size, self.x_ref_.shape[0]
        self._ops[:, n_sub:], self._offs[n_sub:] = 0.0, 0.0
        # after[s]: sum of k(y_s, y_j) over the events j that came after slot s's event; when
        # the oldest event leaves, that is exactly its share of the window's pair sum.
        self._after, self._cross = np.zeros(w), [0.0] * w
        self._pairs, self._cross_sum = 0.0, 0.0  # sum over pairs i < j; sum of cross terms
        self._next, self._count = 0, 0  # the slot written next, events in the window

    def _update_one(self, x: np.ndarray) -> float:
        if self.preprocess is not None:
            x = self.preprocess.transform(x[None])[0]
        x32 = (x - self.center_).astype(np.float32)
        x_g = self._gamma32 * np.add.reduce(x32 * x32)
        if not math.isfinite(x_g):  # before any state changes
            raise self._too_far()
        # one product and one exp against the sub-reference and the window at once
        k = self._exp_kernel(x32 @ self._ops, x_g)
        n_sub = self.x_ref_.shape[0]
        return self._slide(x32, x_g, float(np.add.reduce(k[:n_sub])), k[n_sub:])

    def _update(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 1:
            return np.array([self._update_one(x[0])])
        if self.preprocess is not None:
            x = self.preprocess.transform(x)
        x32, n_sub = (x - self.center_).astype(np.float32), self.x_ref_.shape[0]
        x_g = self._gamma * (x32 * x32).sum(1)
        if not math.isfinite(x_g.sum()):  # before any state changes
            raise self._too_far()
        arg = x32 @ self._ops[:, :n_sub]  # the reference part of every event in one product
        cross = self._exp_kernel(arg, x_g[:, None], slice(n_sub)).sum(1, dtype=np.float64)
        cross = cross.tolist()  # Python floats for the running sums
        stats = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            k = self._exp_kernel(x32[i] @ self._ops[:, n_sub:], x_g[i], slice(n_sub, None))
            stats[i] = self._slide(x32[i], x_g[i], cross[i], k)
        return stats

    def _too_far(self) -> DataError:
        return DataError(f"x has values too far from the reference for the float32 kernels of "
                         f"{type(self).__name__} (beyond ~1e19 bandwidths).")  # fmt: skip

    def _exp_kernel(self, arg: np.ndarray, x_g: Any, cols: slice = slice(None)) -> np.ndarray:
        """``k = exp(min(0, arg + offsets + g ||x||^2))`` in place, for the given columns."""
        arg += self._offs[cols]
        arg += x_g
        return np.exp(np.minimum(arg, _ZERO, out=arg), out=arg)

    def _slide(self, x32: np.ndarray, x_g: Any, cross: float, k: np.ndarray) -> float:
        """Put one event in the oldest slot given its kernels ``k`` with the slots; O(W)."""
        w, s, count, after = self.window_size, self._next, self._count, self._after
        pairs, cross_sum = self._pairs, self._cross_sum
        if count == w:  # the oldest event leaves slot s
            pairs -= after.item(s)
            cross_sum -= self._cross[s]
        k[s] = 0.0  # the event that just left
        if count < w:
            k[count:] = 0.0  # empty slots
        after += k
        after[s] = 0.0
        self._pairs = pairs = pairs + float(np.add.reduce(k, dtype=np.float64))
        np.multiply(self._scale32, x32, out=self._slots[s])
        self._offs[self.x_ref_.shape[0] + s] = x_g
        self._cross[s] = cross
        self._cross_sum = cross_sum = cross_sum + cross
        self._next, self._count = (s + 1) % w, min(count + 1, w)
        if count + 1 < w:
            return np.nan  # the window is not full yet
        n_sub = self.x_ref_.shape[0]
        return self.ref_term_ + (2.0 * pairs / (w - 1) - 2.0 * cross_sum / n_sub) / w
