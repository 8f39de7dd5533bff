"""Drift of a model's outputs, from the outputs the traffic carries (no model needed).

:class:`ClassDistributionDrift` tests the predicted-class mix (chi-squared),
:class:`ConfidenceDrift` the top-class probability and :class:`EntropyDrift` the predictive
entropy (two-sample Kolmogorov-Smirnov). Outputs are probabilities, logits or, for the class
mix, predicted labels; each row is one prediction. A shift in what the model predicts, or in
how sure it is, often precedes a measurable drop in accuracy (Rabanser et al. 2019).

References
----------
S. Rabanser, S. Günnemann and Z. C. Lipton, "Failing loudly: an empirical study of methods
for detecting dataset shift", NeurIPS 2019.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
from scipy import special

from detectors._validation import Constraint, Interval, Options, check_array
from detectors.drift.chisquare import ChiSquareDrift
from detectors.drift.ks import KSDrift
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError

__all__ = ["ClassDistributionDrift", "ConfidenceDrift", "EntropyDrift"]

_P_VAL = Interval(Real, 0, 1, closed="neither")
_SUM_TOLERANCE = 1e-3


class _FromOutputs:
    """Validates outputs and derives the one column a test needs from them."""

    outputs: str
    _kinds: ClassVar[tuple[str, ...]] = ("probabilities", "logits")

    def _check(self, x: Any, name: str) -> np.ndarray:
        caller = type(self).__name__
        if self.outputs == "labels":
            x = check_array(x, name=name, caller=caller, min_rows=2)
            if x.shape[1] != 1 or (x != np.round(x)).any() or (x < 0).any():
                raise DataError(f"{caller} expects {name} of predicted labels: one column of "
                                f"non-negative integers.")  # fmt: skip
            return x
        x = check_array(x, name=name, caller=caller, min_rows=2)
        if x.shape[1] < 2:
            raise DataError(f"{caller} expects {name} with one column per class (at least 2).")
        if self.outputs == "probabilities" and (
            (x < 0).any() or (x > 1).any() or (np.abs(x.sum(1) - 1) > _SUM_TOLERANCE).any()
        ):
            raise DataError(
                f"{caller} expects rows of {name} to be probabilities (each in [0, 1], summing "
                f"to 1); pass outputs='logits' for unnormalised scores."
            )
        return x

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        return special.softmax(x, axis=1) if self.outputs == "logits" else x


class ClassDistributionDrift(_FromOutputs, ChiSquareDrift):
    """Chi-squared test of the predicted-class mix against the reference's.

    The predicted class is ``argmax_c p_c`` (or the given label); the 2 x K table of class
    counts is tested as in :class:`~detectors.drift.ChiSquareDrift` (Pearson 1900). A class
    the reference never predicted counts in an extra column of reference count 0: predicting
    it is evidence of drift, not an error.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level, in (0, 1).
    outputs : {"probabilities", "logits", "labels"}, default="probabilities"
        What each row holds: class probabilities, logits, or one predicted label.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ClassDistributionDrift(outputs="labels").fit(rng.choice(3, size=(500, 1)))
    >>> det.test(rng.choice(3, size=(200, 1))).is_drift
    False
    >>> r = det.test(rng.choice(3, size=(200, 1), p=[0.6, 0.2, 0.2]))
    >>> r.is_drift, r.detector
    (True, 'output-class')
    """

    name = "output-class"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_val": _P_VAL,
        "outputs": Options(("probabilities", "logits", "labels")),
    }
    correction, unseen, yates = "bonferroni", "category", True

    def __init__(self, p_val: float = 0.05, outputs: str = "probabilities") -> None:
        self.p_val = p_val
        self.outputs = outputs
        self._validate_params()

    def _derive(self, x: np.ndarray) -> np.ndarray:
        return x if self.outputs == "labels" else x.argmax(1)[:, None].astype(np.float64)

    def _fit(self, x_ref: np.ndarray) -> None:
        super()._fit(self._derive(x_ref))

    def _test(self, x: np.ndarray) -> DriftResult:
        return super()._test(self._derive(x))


class ConfidenceDrift(_FromOutputs, KSDrift):
    """Two-sample Kolmogorov-Smirnov test of the top-class probability ``max_c p_c``.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level, in (0, 1).
    outputs : {"probabilities", "logits"}, default="probabilities"
        What each row holds.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ConfidenceDrift(outputs="logits").fit(rng.normal(size=(500, 4)) * 3)
    >>> det.test(rng.normal(size=(200, 4)) * 3).is_drift  # same logit scale
    False
    >>> det.test(rng.normal(size=(200, 4))).is_drift  # smaller logits: less confident
    True
    """

    name = "output-confidence"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_val": _P_VAL,
        "outputs": Options(("probabilities", "logits")),
    }
    correction, alternative, method = "bonferroni", "two-sided", "auto"

    def __init__(self, p_val: float = 0.05, outputs: str = "probabilities") -> None:
        self.p_val = p_val
        self.outputs = outputs
        self._validate_params()

    def _derive(self, x: np.ndarray) -> np.ndarray:
        return self._probabilities(x).max(1, keepdims=True)

    def _fit(self, x_ref: np.ndarray) -> None:
        super()._fit(self._derive(x_ref))

    def _test(self, x: np.ndarray) -> DriftResult:
        return super()._test(self._derive(x))


class EntropyDrift(ConfidenceDrift):
    """Two-sample Kolmogorov-Smirnov test of the predictive entropy ``-sum_c p_c log p_c``.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level, in (0, 1).
    outputs : {"probabilities", "logits"}, default="probabilities"
        What each row holds.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = EntropyDrift(outputs="logits").fit(rng.normal(size=(500, 4)) * 3)
    >>> r = det.test(rng.normal(size=(200, 4)) * 1.5)
    >>> r.is_drift, r.detector
    (True, 'output-entropy')
    """

    name = "output-entropy"

    def _derive(self, x: np.ndarray) -> np.ndarray:
        return special.entr(self._probabilities(x)).sum(1, keepdims=True)
