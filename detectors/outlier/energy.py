"""Energy score: :class:`EnergyScore`."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from scipy import special

from detectors._validation import Constraint, Interval
from detectors.adversarial.base import FPR
from detectors.outlier._outputs import OutputDetector

__all__ = ["EnergyScore"]


class EnergyScore(OutputDetector):
    """Flags outputs of high free energy ``E(x) = -T logsumexp(z(x) / T)``, from logits alone.

    The energy is, up to a constant, the negative log of the density the classifier's logits
    implicitly assign to ``x``; in-distribution inputs get lower energy, and unlike the
    softmax probability it does not saturate (Liu et al. 2020). Needs logits: probabilities
    have ``logsumexp(log p) = 0`` for every row. The threshold is the ``(1 - fpr)`` conformal
    quantile of the reference energies.

    Parameters
    ----------
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    temperature : float, default=1.0
        ``T`` > 0; the paper finds T = 1 best without fine-tuning.

    Attributes
    ----------
    threshold_ : float
    n_features_in_ : int
        Number of classes.

    References
    ----------
    W. Liu, X. Wang, J. Owens, Y. Li, "Energy-based out-of-distribution detection",
    NeurIPS 2020.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = EnergyScore(fpr=0.05).fit(rng.normal(size=(400, 3)) + [6.0, 0.0, 0.0])
    >>> det.score([[6.0, 0.0, 0.0]]).round(3), det.predict([[1.0, 1.1, 0.9]])
    (array([-6.005]), array([ True]))
    """

    name = "energy"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "fpr": FPR,
        "temperature": Interval(Real, 0, None, closed="neither"),
    }

    def __init__(self, fpr: float = 0.05, temperature: float = 1.0) -> None:
        self.fpr = fpr
        self.temperature = temperature
        self._validate_params()

    def _score(self, x: np.ndarray) -> np.ndarray:
        return -self.temperature * special.logsumexp(x / self.temperature, axis=1)
