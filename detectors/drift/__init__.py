"""Drift detectors. Batch: ``fit(x_ref)`` on reference data, then ``test(x) -> DriftResult``.
Online: ``fit(x_ref)``, then ``update(x_t) -> OnlineDriftResult`` per event or micro-batch.

=====================================  ==========================================================
Feature-wise tests (p-values)          :class:`KSDrift`, :class:`CVMDrift`, :class:`ChiSquareDrift`
Distances (thresholds)                 :class:`PSIDrift`, :class:`JensenShannonDrift`,
                                       :class:`WassersteinDrift`
Multivariate permutation tests         :class:`MMDDrift`, :class:`LSDDDrift`
Online, calibrated to an ERT           :class:`MMDDriftOnline`, :class:`CVMDriftOnline`
Model outputs                          :class:`ClassDistributionDrift`, :class:`ConfidenceDrift`,
                                       :class:`EntropyDrift`
Mixed tabular data                     :class:`TabularDrift`
Preprocessing before MMD / LSDD        :class:`RandomProjection`, :class:`UntrainedEncoder`,
                                       :class:`HiddenLayer`
=====================================  ==========================================================

>>> from detectors.drift import KSDrift, CVMDrift, ChiSquareDrift, MMDDrift, LSDDDrift, \\
...     MMDDriftOnline, CVMDriftOnline, DriftResult
"""

from detectors.drift.base import DriftDetector
from detectors.drift.chisquare import ChiSquareDrift
from detectors.drift.cvm import CVMDrift
from detectors.drift.cvm_online import CVMDriftOnline
from detectors.drift.encoder import UntrainedEncoder
from detectors.drift.hidden_layer import HiddenLayer
from detectors.drift.jensen_shannon import JensenShannonDrift
from detectors.drift.ks import KSDrift
from detectors.drift.lsdd import LSDDDrift
from detectors.drift.mmd import MMDDrift
from detectors.drift.mmd_online import MMDDriftOnline
from detectors.drift.online_base import OnlineDriftDetector
from detectors.drift.output import ClassDistributionDrift, ConfidenceDrift, EntropyDrift
from detectors.drift.preprocess import Preprocessor, RandomProjection
from detectors.drift.psi import PSIDrift
from detectors.drift.result import DriftResult, OnlineDriftResult
from detectors.drift.tabular import TabularDrift
from detectors.drift.wasserstein import WassersteinDrift

__all__ = [
    "CVMDrift",
    "CVMDriftOnline",
    "ChiSquareDrift",
    "ClassDistributionDrift",
    "ConfidenceDrift",
    "DriftDetector",
    "DriftResult",
    "EntropyDrift",
    "HiddenLayer",
    "JensenShannonDrift",
    "KSDrift",
    "LSDDDrift",
    "MMDDrift",
    "MMDDriftOnline",
    "OnlineDriftDetector",
    "OnlineDriftResult",
    "PSIDrift",
    "Preprocessor",
    "RandomProjection",
    "TabularDrift",
    "UntrainedEncoder",
    "WassersteinDrift",
]
