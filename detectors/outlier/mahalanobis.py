"""Class-conditional Gaussians with a tied covariance: :class:`MahalanobisDetector`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch

from detectors import _model
from detectors._validation import Constraint, InstanceOf, Interval, Options, check_array
from detectors.adversarial.base import FPR, ModelInputDetector
from detectors.exceptions import DataError

__all__ = ["MahalanobisDetector"]


class MahalanobisDetector(ModelInputDetector):
    """Flags inputs far from every class: the minimum Mahalanobis distance of their features.

    Features ``φ(x)`` are the model's logits or the flattened output of a named hidden layer.
    Fitted on part of the reference: class means ``μ_c`` and one tied covariance
    ``Σ = (1/n) Σ_i (φ_i - μ_{y_i})(φ_i - μ_{y_i})ᵀ + λ (tr Σ / d) I``; the score is
    ``min_c sqrt((φ(x) - μ_c)ᵀ Σ⁻¹ (φ(x) - μ_c))`` (Lee et al. 2018, without their input
    preprocessing or layer ensemble). The threshold is the ``(1 - fpr)`` conformal quantile
    of the scores of the other part, which the Gaussians never saw: in-sample distances are
    optimistically small.

    Parameters
    ----------
    model : torch.nn.Module or None, default=None
        The monitored model, run batched on its own device. None: the rows of ``x`` are
        already features, e.g. the logits the traffic carries.
    layer : str or None, default=None
        A name from ``model.named_modules()`` whose output is the feature; None for logits.
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    calibration_fraction : float, default=0.3
        Share of the reference held out to calibrate the threshold, in (0, 1); the rest fits
        the Gaussians, which need more rows than the quantile.
    reg : float, default=1e-6
        Ridge ``λ`` on the covariance, relative to its mean variance: keeps ``Σ`` invertible
        when features are collinear (softmax-invariant logits, dead ReLU units) without
        changing well-conditioned directions.
    input_shape : sequence of int or None, default=None
        Shape of one model input (default: that of ``x_ref``'s rows); rows may come flat.
    batch_size : int, default=256
        Inputs per forward pass.
    seed : int, default=0
        Seeds the fit/calibration split.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels seen in the fitting part (``y``, or the model's predictions without it).
    means_ : ndarray of shape (n_classes, d)
        Whitened class means ``W μ_c``.
    whitening_ : ndarray of shape (d, d)
        ``W`` with ``Wᵀ W = Σ⁻¹``, applied as ``φ W``.
    threshold_ : float

    References
    ----------
    K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting
    out-of-distribution samples and adversarial attacks", NeurIPS 2018.

    Examples
    --------
    On features directly (``model=None``), two classes, labels given:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 600)
    >>> x = rng.normal(size=(600, 2)) + 4.0 * y[:, None]
    >>> det = MahalanobisDetector(fpr=0.05).fit(x, y)
    >>> det.predict([[0.0, 0.0], [4.0, 4.0], [2.0, 2.0], [-5.0, 9.0]]).tolist()
    [False, False, True, True]
    """

    name = "mahalanobis"
    family = "outlier"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        **ModelInputDetector._model_constraints,
        "model": [Options((None,)), InstanceOf(torch.nn.Module)],
        "layer": [Options((None,)), InstanceOf(str)],
        "fpr": FPR,
        "calibration_fraction": Interval(Real, 0, 1, closed="neither"),
        "reg": Interval(Real, 0, None, closed="left"),
        "seed": Interval(Integral, 0, None),
    }

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        layer: str | None = None,
        fpr: float = 0.05,
        calibration_fraction: float = 0.3,
        reg: float = 1e-6,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.layer = layer
        self.fpr = fpr
        self.calibration_fraction = calibration_fraction
        self.reg = reg
        self.input_shape = tuple(input_shape) if isinstance(input_shape, list) else input_shape
        self.batch_size = batch_size
        self.seed = seed
        self._runtime_params = ("model",) if model is not None else ()
        self._validate_params()
        if layer is not None and model is None:
            raise DataError(
                "MahalanobisDetector needs the model to read layer "
                f"{layer!r}; pass model=... or layer=None."
            )

    def _check(self, x: Any, name: str, fitting: bool = False) -> np.ndarray:
        if self.model is not None:
            return super()._check(x, name, fitting)
        x = check_array(x, name=name, caller=type(self).__name__)
        if fitting:
            self.n_features_in_ = x.shape[1]
        elif x.shape[1] != self.n_features_in_:
            raise DataError(
                f"{name} has {x.shape[1]} features, but MahalanobisDetector was "
                f"fitted with {self.n_features_in_}."
            )
        return x

    def _restore(self) -> None:
        if self.model is not None:
            super()._restore()

    def _features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, d) and the predicted class of each row."""
        if self.model is None:
            return x, x.argmax(1)

        def run(batch: torch.Tensor) -> torch.Tensor:
            if self.layer is None:
                z = self._logits(batch)
                return torch.cat([z, z.argmax(1, keepdim=True).float()], 1)
            feats, z = _model.capture(self.model, self.layer, batch, type(self).__name__)
            return torch.cat([feats, z.argmax(1, keepdim=True).float()], 1)

        out = _model.run_batched(self.model, x, run, batch_size=self.batch_size)
        return out[:, :-1], out[:, -1].astype(np.int64)

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        feats, labels = self._features(x)
        if y is not None:
            labels = np.asarray(y)
            if labels.shape != (x.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
                raise DataError(
                    f"MahalanobisDetector expects y of {x.shape[0]} integer labels; "
                    f"got {labels.dtype} of shape {labels.shape}."
                )
        perm = np.random.default_rng(self.seed).permutation(x.shape[0])
        n_cal = round(self.calibration_fraction * x.shape[0])
        cal, fit = perm[:n_cal], perm[n_cal:]
        if fit.size < 2:
            raise DataError(
                f"MahalanobisDetector needs at least 2 rows to fit the Gaussians; "
                f"got {fit.size} of {x.shape[0]}."
            )
        self.classes_, index = np.unique(labels[fit], return_inverse=True)
        means = np.stack([feats[fit][index == c].mean(0) for c in range(self.classes_.size)])
        centred = feats[fit] - means[index]
        cov = centred.T @ centred / fit.size
        scale = np.trace(cov) / cov.shape[0] or 1.0
        evals, evecs = np.linalg.eigh(cov + self.reg * scale * np.eye(cov.shape[0]))
        self.whitening_ = evecs / np.sqrt(np.maximum(evals, np.finfo(float).tiny))
        self.means_ = means @ self.whitening_
        return self._distances(feats[cal])

    def _distances(self, feats: np.ndarray) -> np.ndarray:
        z = feats @ self.whitening_
        sq = (z * z).sum(1)[:, None] - 2 * z @ self.means_.T + (self.means_**2).sum(1)[None]
        return np.sqrt(np.maximum(sq.min(1), 0.0))

    def _score(self, x: np.ndarray) -> np.ndarray:
        return self._distances(self._features(x)[0])
