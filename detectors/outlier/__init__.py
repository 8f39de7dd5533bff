"""Per-input outlier detectors: inputs unlike the reference, or outputs the model is unsure of.

=====================================  ==========================================================
From the outputs alone (no model)      :class:`MaxSoftmax`, :class:`EnergyScore`
Class-conditional Gaussians            :class:`MahalanobisDetector` (logits or a hidden layer)
Either baseline on the model's logits  :class:`OnModelLogits` (reads inputs; runs the model)
=====================================  ==========================================================

Same contract as :mod:`detectors.adversarial`: ``fit(x_ref)``, ``score(x)``, ``predict(x)``,
thresholds calibrated for a false-positive rate ``fpr``; flags read ``outlier:<name>``.

>>> from detectors.outlier import MahalanobisDetector, MaxSoftmax, EnergyScore, OnModelLogits
"""

from detectors.outlier.energy import EnergyScore
from detectors.outlier.mahalanobis import MahalanobisDetector
from detectors.outlier.max_softmax import MaxSoftmax
from detectors.outlier.on_model_logits import OnModelLogits

__all__ = ["EnergyScore", "MahalanobisDetector", "MaxSoftmax", "OnModelLogits"]
