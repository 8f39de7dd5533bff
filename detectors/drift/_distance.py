"""What the distance detectors share: a per-feature distance, a threshold, no p-value.

A distance (PSI, Jensen-Shannon, normed Wasserstein) says how far a batch is from the
reference, not how surprising that is at its sample size: its threshold is a convention, and
sampling noise alone gives distances of order ``sqrt(1/n_ref + 1/n)`` (about 0.05 for 2,000
reference rows and a window of 500: the normed Wasserstein distance of such null windows
reaches 0.09 over five features). Use windows of a thousand rows or more with the default
thresholds, or a test (KS, CvM, chi-squared) where a false-positive rate matters.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from detectors._validation import Interval
from detectors.drift.base import DriftDetector
from detectors.drift.result import DriftResult

__all__ = ["DistanceDrift", "bin_proportions", "quantile_edges"]

THRESHOLD = Interval(Real, 0, None, closed="neither")
N_BINS = Interval(Integral, 2, None)


class DistanceDrift(DriftDetector):
    """Base of distance detectors: drift when some feature's distance exceeds ``threshold``.

    Subclasses implement ``_fit`` and ``_distances(x) -> ndarray of shape (n_features,)``.
    """

    threshold: float

    def _distances(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _test(self, x: np.ndarray) -> DriftResult:
        d = self._distances(x)
        return DriftResult(
            is_drift=bool((d > self.threshold).any()), p_value=None, statistic=float(d.max()),
            threshold=self.threshold, p_val=None, feature_p_values=None, feature_statistics=d,
            n_reference=self.n_reference_, n_test=x.shape[0], detector=self.name,
        )  # fmt: skip


def quantile_edges(x_ref: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges of ``n_bins`` equal-mass bins per feature, shape (n_features, n_bins - 1).

    Repeated values may repeat edges; the bins between them stay empty in every sample.
    """
    return np.quantile(x_ref, np.linspace(0, 1, n_bins + 1)[1:-1], axis=0).T.copy()


def bin_proportions(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of each feature's rows in each bin, shape (n_features, n_bins).

    Bin ``b`` holds ``edges[b - 1] <= v < edges[b]``; the end bins are open.
    """
    n_bins = edges.shape[1] + 1
    counts = np.stack([np.bincount(np.searchsorted(e, col, side="right"), minlength=n_bins)
                       for e, col in zip(edges, x.T, strict=True)])  # fmt: skip
    return counts / x.shape[0]
