"""Jensen-Shannon distance per feature: :class:`JensenShannonDrift`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import special

from detectors._validation import Constraint
from detectors.drift._distance import (
    N_BINS,
    THRESHOLD,
    DistanceDrift,
    bin_proportions,
    quantile_edges,
)

__all__ = ["JensenShannonDrift"]


class JensenShannonDrift(DistanceDrift):
    """Jensen-Shannon distance between binned reference and batch, per feature.

    With shares ``p`` (reference) and ``q`` (batch) on ``n_bins`` bins of equal reference mass
    and ``m = (p + q) / 2``, ``JS = sqrt(KL(p || m) / 2 + KL(q || m) / 2)`` in base 2, a metric
    in [0, 1] (Lin 1991; Endres and Schindelin 2003); it equals
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` and needs no smoothing.

    Parameters
    ----------
    threshold : float, default=0.1
        A feature drifted when its distance exceeds this (Evidently's default).
    n_bins : int, default=10
        Bins per feature, cut at reference quantiles once in ``fit``.

    Attributes
    ----------
    edges_ : ndarray of shape (n_features, n_bins - 1)
        Inner bin edges.
    reference_shares_ : ndarray of shape (n_features, n_bins)
        Reference share of each bin.

    References
    ----------
    J. Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory 37
    (1991), 145-151.
    D. M. Endres and J. E. Schindelin, "A new metric for probability distributions", IEEE
    Trans. Inf. Theory 49 (2003), 1858-1860.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = JensenShannonDrift().fit(rng.normal(size=(2000, 2)))
    >>> r = det.test(rng.normal(size=(1000, 2)) * [1.0, 2.0])
    >>> r.is_drift, r.feature_statistics.round(3).tolist()
    (True, [0.053, 0.305])
    """

    name = "jensen-shannon"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "threshold": THRESHOLD,
        "n_bins": N_BINS,
    }

    def __init__(self, threshold: float = 0.1, n_bins: int = 10) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        self.edges_ = quantile_edges(x_ref, self.n_bins)
        self.reference_shares_ = bin_proportions(x_ref, self.edges_)

    def _distances(self, x: np.ndarray) -> np.ndarray:
        p, q = self.reference_shares_, bin_proportions(x, self.edges_)
        m = (p + q) / 2
        js = (special.rel_entr(p, m).sum(1) + special.rel_entr(q, m).sum(1)) / (2 * np.log(2))
        return np.sqrt(np.maximum(js, 0.0))
