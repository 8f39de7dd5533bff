"""Population stability index per feature: :class:`PSIDrift`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from detectors._validation import Constraint
from detectors.drift._distance import (
    N_BINS,
    THRESHOLD,
    DistanceDrift,
    bin_proportions,
    quantile_edges,
)

__all__ = ["PSIDrift"]

_FLOOR = 1e-4  # an empty bin counts as this share, so that log(q / p) stays finite


class PSIDrift(DistanceDrift):
    """Population stability index on quantile bins of the reference, per feature.

    With reference shares ``p_b`` and batch shares ``q_b`` of ``n_bins`` bins of equal reference
    mass, ``PSI = sum_b (q_b - p_b) ln(q_b / p_b)``, a symmetrised Kullback-Leibler divergence
    (Siddiqi 2006). Shares are floored at 1e-4. The conventional reading is: below 0.1 stable,
    0.1 to 0.2 a moderate shift, above 0.2 a significant one (Yurdakul 2018); the default
    threshold flags the last. Expect about ``(n_bins - 1) (1/n_ref + 1/n)`` without drift.

    Parameters
    ----------
    threshold : float, default=0.2
        A feature drifted when its PSI exceeds this.
    n_bins : int, default=10
        Bins per feature, cut at reference quantiles once in ``fit``.

    Attributes
    ----------
    edges_ : ndarray of shape (n_features, n_bins - 1)
        Inner bin edges.
    reference_shares_ : ndarray of shape (n_features, n_bins)
        Reference share of each bin (``1 / n_bins`` up to ties).

    References
    ----------
    N. Siddiqi, "Credit Risk Scorecards", Wiley, 2006.
    B. Yurdakul, "Statistical properties of population stability index", PhD thesis,
    Western Michigan University, 2018.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = PSIDrift().fit(rng.normal(size=(2000, 2)))
    >>> r = det.test(rng.normal(size=(1000, 2)) + [0.0, 0.6])
    >>> r.is_drift, r.feature_statistics.round(3).tolist(), r.p_value
    (True, [0.016, 0.408], None)
    """

    name = "psi"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "threshold": THRESHOLD,
        "n_bins": N_BINS,
    }

    def __init__(self, threshold: float = 0.2, n_bins: int = 10) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        self.edges_ = quantile_edges(x_ref, self.n_bins)
        self.reference_shares_ = bin_proportions(x_ref, self.edges_)

    def _distances(self, x: np.ndarray) -> np.ndarray:
        p = np.maximum(self.reference_shares_, _FLOOR)
        q = np.maximum(bin_proportions(x, self.edges_), _FLOOR)
        return ((q - p) * np.log(q / p)).sum(1)
