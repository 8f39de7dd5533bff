"""Maximum softmax probability baseline: :class:`MaxSoftmax`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from detectors._validation import Constraint, Options
from detectors.adversarial.base import FPR
from detectors.outlier._outputs import OutputDetector

__all__ = ["MaxSoftmax"]


class MaxSoftmax(OutputDetector):
    """Flags outputs the model is unsure of: score ``1 - max_c p_c``, from the outputs alone.

    Misclassified, out-of-distribution and minimal-perturbation adversarial inputs tend to
    get a lower top-class probability than clean in-distribution inputs (Hendrycks & Gimpel
    2017). From logits the score is computed as ``s / (1 + s)`` with
    ``s = Σ_{j ≠ argmax} exp(z_j - max z)``, exact even where ``max_c p_c`` rounds to 1.
    The threshold is the ``(1 - fpr)`` conformal quantile of the reference scores.

    Parameters
    ----------
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    outputs : {"logits", "probabilities"}, default="logits"
        What each row holds. Logits are better: probabilities saturate at 1.

    Attributes
    ----------
    threshold_ : float
    n_features_in_ : int
        Number of classes.

    References
    ----------
    D. Hendrycks, K. Gimpel, "A baseline for detecting misclassified and out-of-distribution
    examples in neural networks", ICLR 2017.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=(400, 3)) + [6.0, 0.0, 0.0]    # confident logits
    >>> det = MaxSoftmax(fpr=0.05).fit(clean)
    >>> det.predict([[6.0, 0.0, 0.0], [1.0, 1.1, 0.9]]).tolist()
    [False, True]
    """

    name = "msp"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "fpr": FPR,
        "outputs": Options(("logits", "probabilities")),
    }

    def __init__(self, fpr: float = 0.05, outputs: str = "logits") -> None:
        self.fpr = fpr
        self.outputs = outputs
        self._validate_params()

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self.outputs == "probabilities":
            return 1.0 - x.max(1)
        others = np.exp(x - x.max(1, keepdims=True))
        others[np.arange(x.shape[0]), x.argmax(1)] = 0.0
        rest = others.sum(1)  # sum over j != argmax of exp(z_j - max z)
        return rest / (1.0 + rest)
