"""Detectors that read the model's outputs as the traffic carries them: no model needed."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors._validation import check_array
from detectors.adversarial.base import InputDetector
from detectors.exceptions import DataError

__all__ = ["OutputDetector"]

_SUM_TOLERANCE = 1e-3


class OutputDetector(InputDetector):
    """Rows of ``x`` are one model output each: logits, or probabilities where allowed.

    Attributes
    ----------
    n_features_in_ : int
        Classes seen in ``fit``; every scored batch must have as many columns.
    """

    family = "outlier"
    outputs: str = "logits"

    def _check(self, x: Any, name: str, fitting: bool = False) -> np.ndarray:
        caller = type(self).__name__
        x = check_array(x, name=name, caller=caller)
        if x.shape[1] < 2:
            raise DataError(
                f"{caller} expects {name} with one column per class (at least 2); got {x.shape[1]}."
            )
        if fitting:
            self.n_features_in_ = x.shape[1]
        elif x.shape[1] != self.n_features_in_:
            raise DataError(
                f"{name} has {x.shape[1]} classes, but {caller} was fitted with "
                f"{self.n_features_in_}."
            )
        if self.outputs == "probabilities" and (
            (x < 0).any() or (x > 1).any() or (np.abs(x.sum(1) - 1) > _SUM_TOLERANCE).any()
        ):
            raise DataError(
                f"{caller} expects rows of {name} to be probabilities (each in "
                "[0, 1], summing to 1); pass outputs='logits' for raw scores."
            )
        return x

    def _learns_from(self, x_ref: np.ndarray) -> bool:
        return False

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        return self._score(x)
