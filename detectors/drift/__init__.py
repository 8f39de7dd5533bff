"""Batch drift detectors: ``fit(x_ref)`` on reference data, then ``test(x) -> DriftResult``.

>>> from detectors.drift import KSDrift, DriftResult, DriftDetector
"""

from detectors.drift.base import DriftDetector
from detectors.drift.ks import KSDrift
from detectors.drift.result import DriftResult

__all__ = ["DriftDetector", "DriftResult", "KSDrift"]
