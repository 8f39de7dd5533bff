"""An output detector fed by the model itself: :class:`OnModelLogits`."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from detectors import _model
from detectors._validation import Constraint, InstanceOf
from detectors.adversarial.base import FPR, ModelInputDetector
from detectors.exceptions import ParameterError
from detectors.outlier._outputs import OutputDetector

__all__ = ["OnModelLogits"]


class OnModelLogits(ModelInputDetector):
    """Runs the model on the inputs and scores its logits with an output detector.

    :class:`~detectors.outlier.MaxSoftmax` and :class:`~detectors.outlier.EnergyScore` read
    outputs the traffic already carries. Wrapped here they read inputs instead, so that they
    can sit in a :class:`~detectors.adversarial.DetectorEnsemble` beside detectors of the
    inputs (feature squeezing, noise consistency), or run where the traffic carries no
    outputs. The score is the wrapped detector's score of ``f(x)``, the model's logits; the
    threshold is the ``(1 - fpr)`` conformal quantile of those scores on the reference.

    Parameters
    ----------
    detector : OutputDetector
        Unfitted detector of logits (``outputs="logits"``). It is fitted on the model's
        logits for the reference; its own ``fpr`` only sets its own ``threshold_``.
    model : torch.nn.Module
        The monitored model, returning logits; run batched on its own device.
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    input_shape : sequence of int or None, default=None
        Shape of one input (default: that of ``x_ref``'s rows); rows may come flat.
    batch_size : int, default=256
        Rows per forward pass.

    Attributes
    ----------
    threshold_ : float

    Examples
    --------
    The logits are the inputs: a confident row passes, one torn between classes is flagged.

    >>> from detectors.outlier import MaxSoftmax
    >>> clean = np.random.default_rng(0).normal(size=(400, 3)) + [6.0, 0.0, 0.0]
    >>> det = OnModelLogits(MaxSoftmax(), torch.nn.Identity()).fit(clean)
    >>> det.predict([[6.0, 0.0, 0.0], [1.0, 1.1, 0.9]]).tolist()
    [False, True]
    >>> det.flag
    'outlier:msp'
    """

    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        **ModelInputDetector._model_constraints,
        "detector": InstanceOf(OutputDetector),
        "fpr": FPR,
    }

    def __init__(
        self,
        detector: OutputDetector,
        model: torch.nn.Module,
        fpr: float = 0.05,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.detector = detector
        self.model = model
        self.fpr = fpr
        self.input_shape = tuple(input_shape) if isinstance(input_shape, list) else input_shape
        self.batch_size = batch_size
        self._validate_params()
        if getattr(detector, "outputs", "logits") != "logits":
            raise ParameterError(
                f"OnModelLogits feeds its detector the model's logits; build "
                f"{type(detector).__name__} with outputs='logits'."
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        """The wrapped detector's name: the flag does not change with where logits come from."""
        return self.detector.name

    @property
    def family(self) -> str:  # type: ignore[override]
        return self.detector.family

    def _learns_from(self, x_ref: np.ndarray) -> bool:
        return False

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        self.detector.fit(self._model_logits(x))
        return self.detector.calibration_scores_  # its scores of the reference, sorted

    def _score(self, x: np.ndarray) -> np.ndarray:
        return self.detector.score(self._model_logits(x))

    def _model_logits(self, x: np.ndarray) -> np.ndarray:
        return _model.run_batched(self.model, x, self._logits, batch_size=self.batch_size)
