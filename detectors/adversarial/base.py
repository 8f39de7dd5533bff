"""What every per-input detector shares: ``fit(x_ref)``, ``score(x)``, ``predict(x)``, a threshold
calibrated for a false-positive rate, and save/load without pickle.

A detector declares its parameters in ``_parameter_constraints`` and stores them under their
own names in ``__init__``; it implements ``_check(x, name)`` (inputs as the math needs them),
``_fit(x_ref, y) -> scores`` (learn, then return clean scores to calibrate on, from data not
used to learn) and ``_score(x)``. Higher scores are more suspicious; ``predict`` flags
``score > threshold_``. :class:`ModelInputDetector` adds what detectors that run the model
share: the model, the shape of one input and the batch size.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from detectors import _model
from detectors._persist import Persistable
from detectors._validation import Constraint, InstanceOf, Interval, Options, SequenceOf, check_rows
from detectors.exceptions import DataError

__all__ = ["FPR", "InputDetector", "ModelInputDetector", "calibrate_threshold"]

FPR = Interval(Real, 0, 1, closed="neither")


def calibrate_threshold(scores: np.ndarray, fpr: float, caller: str) -> float:
    """The ``⌈(1 - fpr)(n + 1)⌉``-th smallest of ``n`` clean scores.

    Flagging ``score > threshold`` then has a false-positive rate of at most ``fpr`` on new
    data exchangeable with the calibration scores (the split-conformal quantile; Vovk et al.
    2005), and at least ``fpr - 1 / (n + 1)`` when scores have no ties.

    Raises
    ------
    DataError
        If fewer than ``⌈1 / fpr⌉ - 1`` scores are given: no order statistic is high enough.

    References
    ----------
    V. Vovk, A. Gammerman, G. Shafer, "Algorithmic learning in a random world", Springer 2005.

    Examples
    --------
    >>> calibrate_threshold(np.arange(1.0, 100.0), 0.05, "Example")
    95.0
    """
    n = scores.shape[0]
    k = math.ceil((1 - fpr) * (n + 1) - 1e-9)
    if k > n:
        raise DataError(
            f"{caller} needs at least {math.ceil(1 / fpr - 1e-9) - 1} clean rows to "
            f"calibrate for fpr={fpr:g}; got {n}."
        )
    return float(np.partition(scores, k - 1)[k - 1])


class InputDetector(Persistable):
    """Base class of per-input detectors: ``fit(x_ref)``, then ``score``/``predict`` batches.

    Attributes
    ----------
    name : str
        Short stable name; results carry the flag ``f"{family}:{name}"``.
    family : {"adversarial", "outlier"}
    threshold_ : float
        Scores above it are flagged.
    n_calibration_ : int
        Clean scores the threshold was calibrated on.
    calibration_scores_ : ndarray of shape (n_calibration_,)
        Those scores, sorted: :meth:`tail_probability` compares new scores with them.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "adversarial"
    fpr: float

    @property
    def flag(self) -> str:
        """The flag results carry for a flagged input, e.g. ``"adversarial:squeeze"``."""
        return f"{self.family}:{self.name}"

    def _is_fitted(self) -> bool:
        return hasattr(self, "threshold_")

    def fit(self, x_ref: Any, y: Any = None) -> Self:
        """Learn from clean reference inputs ``x_ref`` (one per row) and calibrate the threshold.

        ``y`` (integer labels) is used only by detectors that say so; returns the detector.
        """
        self._validate_params()
        scores = self._fit(self._check(x_ref, "x_ref", fitting=True), y)
        self.threshold_ = calibrate_threshold(scores, self.fpr, type(self).__name__)
        self.n_calibration_ = int(scores.shape[0])
        self.calibration_scores_ = np.sort(scores)
        self._restore()
        return self

    def score(self, x: Any) -> np.ndarray:
        """One score per row of ``x``, float64 of shape (n,); higher is more suspicious."""
        self._require_fitted()
        return self._score(self._check(x, "x"))

    def predict(self, x: Any) -> np.ndarray:
        """One flag per row of ``x``: ``score(x) > threshold_``, bool of shape (n,)."""
        return self.score(x) > self.threshold_

    def tail_probability(self, scores: Any) -> np.ndarray:
        """Conformal p-values of ``scores`` (from :meth:`score`) against the clean
        calibration scores: ``(1 + #{calibration scores >= s}) / (n + 1)``.

        On clean inputs exchangeable with the calibration data it is (super-)uniform, so
        ``P(p <= a) <= a``: a scale-free score, comparable across detectors (Vovk et al. 2005).

        Examples
        --------
        >>> from detectors.outlier import MaxSoftmax
        >>> det = MaxSoftmax(fpr=0.5).fit([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
        >>> det.tail_probability(det.score([[0.0, 0.0], [0.0, 9.0]])).tolist()
        [0.25, 1.0]
        """
        self._require_fitted()
        ref = self.calibration_scores_
        above = ref.size - np.searchsorted(ref, np.asarray(scores, dtype=np.float64), side="left")
        return (1.0 + above) / (ref.size + 1.0)

    def _learns_from(self, x_ref: np.ndarray) -> bool:
        """Whether ``fit`` learns more than the threshold from ``x_ref`` (so that its scores
        on ``x_ref`` would be optimistic)."""
        return True

    def _check(self, x: Any, name: str, fitting: bool = False) -> np.ndarray:
        raise NotImplementedError

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        raise NotImplementedError

    def _score(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        show = {
            k: f"<{type(v).__name__}>" if isinstance(v, torch.nn.Module) else repr(v)
            for k, v in self.get_params().items()
        }
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in show.items())})"

    @classmethod
    def load(cls, directory: str | Path, **runtime: Any) -> Self:
        """Rebuild a detector written by :meth:`save`; pass the model back as ``model=``.

        ``InputDetector.load`` returns whichever detector the directory holds.
        """
        name = json.loads((Path(directory) / "config.json").read_text()).get("class")
        found = [c for c in _descendants(cls) if c.__name__ == name]
        extra = found[0]._load_components(Path(directory), runtime) if found else {}
        return super().load(directory, **runtime, **extra)

    @classmethod
    def _load_components(cls, path: Path, runtime: dict[str, Any]) -> dict[str, Any]:
        """Parameters that a subclass saves itself (the ensemble's members)."""
        return {}


class ModelInputDetector(InputDetector):
    """A detector that runs the monitored model on its inputs.

    The model is not saved: pass it back as ``load(path, model=model)``; a fingerprint of its
    parameters refuses a different model.

    Attributes
    ----------
    input_shape_ : tuple of int
        Shape of one input; rows may also arrive flattened.
    model_fingerprint_ : str
        SHA-256 of the model's parameters and buffers.
    """

    _runtime_params = ("model",)
    _model_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "model": InstanceOf(torch.nn.Module),
        "input_shape": [Options((None,)), SequenceOf(Interval(Integral, 1, None))],
        "batch_size": Interval(Integral, 1, None),
    }
    model: torch.nn.Module
    input_shape: tuple[int, ...] | None
    batch_size: int

    def _check(self, x: Any, name: str, fitting: bool = False) -> np.ndarray:
        caller = type(self).__name__
        if fitting:
            shape = None if self.input_shape is None else tuple(self.input_shape)
            x = check_rows(x, name=name, caller=caller, shape=shape, dtype=np.float32)
            self.input_shape_ = tuple(x.shape[1:])
            self.model_fingerprint_ = _model.fingerprint(self.model)
            return x
        return check_rows(x, name=name, caller=caller, shape=self.input_shape_, dtype=np.float32)

    def _restore(self) -> None:
        self.input_shape_ = tuple(self.input_shape_)
        if _model.fingerprint(self.model) != self.model_fingerprint_:
            raise DataError(
                f"The model given to {type(self).__name__} is not the one it was "
                "fitted with (its parameters differ)."
            )

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        return _model.logits(self.model, batch, type(self).__name__)


def _descendants(cls: type) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_descendants(sub))
    return out
