"""Per-input adversarial detectors, their ensemble, and stateful detection of query attacks.

=====================================  ==========================================================
Per input, from the model              :class:`FeatureSqueezing`, :class:`NoiseConsistency`
Any member fires, one budget           :class:`DetectorEnsemble`
Query attacks, per client              :class:`StatefulQueryDetector`
Base of per-input detectors            :class:`InputDetector`, :class:`ModelInputDetector`
=====================================  ==========================================================

Per-input detectors: ``fit(x_ref)`` on clean reference inputs, then ``score(x)`` and
``predict(x)``, one answer per row, with thresholds calibrated for a false-positive rate
``fpr``. The outlier baselines live in :mod:`detectors.outlier`.

>>> from detectors.adversarial import FeatureSqueezing, NoiseConsistency, DetectorEnsemble, \\
...     StatefulQueryDetector
"""

from detectors.adversarial.base import InputDetector, ModelInputDetector, calibrate_threshold
from detectors.adversarial.ensemble import DetectorEnsemble
from detectors.adversarial.feature_squeezing import SQUEEZERS, FeatureSqueezing
from detectors.adversarial.noise_consistency import NoiseConsistency
from detectors.adversarial.query_results import QueryVerdicts, StatefulSnapshot
from detectors.adversarial.stateful import StatefulQueryDetector

__all__ = [
    "SQUEEZERS",
    "DetectorEnsemble",
    "FeatureSqueezing",
    "InputDetector",
    "ModelInputDetector",
    "NoiseConsistency",
    "QueryVerdicts",
    "StatefulQueryDetector",
    "StatefulSnapshot",
    "calibrate_threshold",
]
