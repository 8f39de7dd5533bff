"""Per-input outlier detectors: inputs unlike the reference, or outputs the model is unsure of.

=====================================  ==========================================================
From the outputs alone (no model)      :class:`MaxSoftmax`, :class:`EnergyScore`
Class-conditional Gaussians            :class:`MahalanobisDetector` (logits or a hidden layer)
=====================================  ==========================================================

Same contract as :mod:`detectors.adversarial`: ``fit(x_ref)``, ``score(x)``, ``predict(x)``,
thresholds calibrated for a false-positive rate ``fpr``; flags read ``outlier:<name>``.

>>> from detectors.outlier import MahalanobisDetector, MaxSoftmax, EnergyScore
"""

from detectors.outlier.energy import EnergyScore
from detectors.outlier.mahalanobis import MahalanobisDetector
from detectors.outlier.max_softmax import MaxSoftmax

__all__ = ["EnergyScore", "MahalanobisDetector", "MaxSoftmax"]
