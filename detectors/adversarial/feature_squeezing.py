"""Feature squeezing: :class:`FeatureSqueezing`."""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from detectors import _model
from detectors._validation import Constraint, InstanceOf, Interval, Options, SequenceOf
from detectors.adversarial.base import FPR, ModelInputDetector
from detectors.exceptions import DataError, ParameterError

__all__ = ["SQUEEZERS", "FeatureSqueezing"]

SQUEEZERS = ("bit-depth", "median-2x2", "median-3x3", "quantile")
"""Squeezer names: the first three for images, ``"quantile"`` for any input."""


def bit_depth(x: torch.Tensor, bits: int, bounds: tuple[float, float]) -> torch.Tensor:
    """Round ``x`` to ``2**bits`` evenly spaced levels spanning ``bounds``.

    >>> bit_depth(torch.tensor([0.1, 0.4, 0.9]), 1, (0.0, 1.0))
    tensor([0., 0., 1.])
    """
    lo, hi = bounds
    levels = 2**bits - 1
    unit = ((x - lo) / (hi - lo)).clamp(0, 1)
    return torch.round(unit * levels) / levels * (hi - lo) + lo


def median(x: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median filter over the last two dimensions, as ``scipy.ndimage.median_filter``
    (window ``[i - k//2, i + (k-1)//2]``, upper median for even ``k``, edges repeated).

    >>> median(torch.tensor([[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]), 3)
    tensor([[0., 0., 0.],
            [0., 0., 0.],
            [0., 0., 0.]])
    """
    img = x.reshape(-1, 1, *x.shape[-2:])
    padded = F.pad(img, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2), mode="replicate")
    patches = padded.unfold(2, k, 1).unfold(3, k, 1).reshape(*img.shape, k * k)
    return patches.sort(-1).values[..., (k * k) // 2].reshape(x.shape)


def nearest_level(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Replace each feature of flat rows ``x`` (n, d) by the nearest of its ``levels`` (L, d).

    >>> nearest_level(torch.tensor([[0.2, 7.0]]), torch.tensor([[0.0, 0.0], [1.0, 10.0]]))
    tensor([[ 0., 10.]])
    """
    cuts = ((levels[1:] + levels[:-1]) / 2).T.contiguous()
    idx = torch.searchsorted(cuts, x.T.contiguous())
    return levels.T.gather(1, idx).T


class FeatureSqueezing(ModelInputDetector):
    """Flags inputs whose prediction changes when the input is squeezed.

    A squeezer removes detail that clean inputs do not need but that adversarial
    perturbations rely on. With ``p(x)`` the model's softmax, the score is
    ``max_s ||p(x) - p(s(x))||_1`` over the squeezers ``s`` (Xu, Evans & Qi 2018): bit-depth
    reduction, 2x2 and 3x3 median smoothing for images; for tabular rows, snapping each
    feature to the nearest of ``n_levels`` quantiles of the reference. The threshold is the
    ``(1 - fpr)`` conformal quantile of the reference scores.

    Parameters
    ----------
    model : torch.nn.Module
        The monitored model, returning logits; run batched on its own device.
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    squeezers : sequence of str or None, default=None
        Names from :data:`SQUEEZERS`. None: the three image squeezers for inputs with at
        least two dimensions (the last two are height and width), ``("quantile",)`` for
        flat rows. On very small images (8x8 digits) the median filters erase strokes and
        clean scores saturate: pass ``["bit-depth"]`` there.
    bits : int, default=5
        Bit depth kept by ``"bit-depth"``, in [1, 16]; the paper uses 1 for MNIST, 5 for
        CIFAR-10 and ImageNet.
    bounds : tuple of float, default=(0.0, 1.0)
        Valid input range, which ``"bit-depth"`` divides into ``2**bits`` levels.
    n_levels : int, default=16
        Quantiles per feature kept by ``"quantile"`` (at least 2).
    input_shape : sequence of int or None, default=None
        Shape of one input (default: that of ``x_ref``'s rows); rows may come flat.
    batch_size : int, default=256
        Rows per forward pass, squeezed copies included.

    Attributes
    ----------
    squeezers_ : tuple of str
        The squeezers in use.
    levels_ : ndarray of shape (n_levels, n_features)
        Reference quantiles of each flat feature (empty without ``"quantile"``).
    threshold_ : float

    References
    ----------
    W. Xu, D. Evans, Y. Qi, "Feature squeezing: detecting adversarial examples in deep neural
    networks", NDSS 2018.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> x = np.random.default_rng(0).random((200, 1, 4, 4))
    >>> det = FeatureSqueezing(model, fpr=0.05).fit(x)
    >>> det.squeezers_, det.score(x[:3]).shape, det.predict(x).mean() <= 0.05
    (('bit-depth', 'median-2x2', 'median-3x3'), (3,), np.True_)
    """

    name = "squeeze"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        **ModelInputDetector._model_constraints,
        "fpr": FPR,
        "squeezers": [Options((None,)), SequenceOf(Options(SQUEEZERS))],
        "bits": Interval(Integral, 1, 16),
        "bounds": InstanceOf(tuple),
        "n_levels": Interval(Integral, 2, None),
    }

    def __init__(
        self,
        model: torch.nn.Module,
        fpr: float = 0.05,
        squeezers: tuple[str, ...] | None = None,
        bits: int = 5,
        bounds: tuple[float, float] = (0.0, 1.0),
        n_levels: int = 16,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.fpr = fpr
        self.squeezers = tuple(squeezers) if isinstance(squeezers, list) else squeezers
        self.bits = bits
        self.bounds = tuple(bounds) if isinstance(bounds, list) else bounds
        self.n_levels = n_levels
        self.input_shape = tuple(input_shape) if isinstance(input_shape, list) else input_shape
        self.batch_size = batch_size
        self._validate_params()
        if len(self.bounds) != 2 or not float(self.bounds[0]) < float(self.bounds[1]):
            raise ParameterError(
                "The 'bounds' parameter of FeatureSqueezing must be a tuple "
                f"(low, high) with low < high. Got {bounds!r} instead."
            )

    def _squeezers_for(self, row_shape: tuple[int, ...]) -> tuple[str, ...]:
        image = len(self.input_shape or row_shape) >= 2
        return self.squeezers or (SQUEEZERS[:3] if image else ("quantile",))

    def _learns_from(self, x_ref: np.ndarray) -> bool:
        return "quantile" in self._squeezers_for(np.shape(x_ref)[1:])

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        image = len(self.input_shape_) >= 2
        self.squeezers_ = self._squeezers_for(self.input_shape_)
        if not image and set(self.squeezers_) - {"quantile"}:
            raise DataError(
                f"FeatureSqueezing: squeezers {self.squeezers_} need image inputs "
                f"(at least 2 dimensions); rows have shape {self.input_shape_}."
            )
        flat = x.reshape(x.shape[0], -1)
        self.levels_ = np.empty((0, flat.shape[1]), dtype=np.float32)
        if "quantile" in self.squeezers_:
            quantiles = np.linspace(0, 1, self.n_levels)
            self.levels_ = np.quantile(flat, quantiles, axis=0).astype(np.float32)
        return self._score(x)

    def _restore(self) -> None:
        super()._restore()
        self.squeezers_ = tuple(self.squeezers_)

    def _squeeze(self, name: str, batch: torch.Tensor) -> torch.Tensor:
        if name == "bit-depth":
            return bit_depth(batch, self.bits, self.bounds)
        if name == "quantile":
            levels = torch.as_tensor(self.levels_, device=batch.device, dtype=batch.dtype)
            return nearest_level(batch.reshape(batch.shape[0], -1), levels).reshape(batch.shape)
        return median(batch, int(name[-1]))

    def _score(self, x: np.ndarray) -> np.ndarray:
        n_views = len(self.squeezers_) + 1

        def run(batch: torch.Tensor) -> torch.Tensor:
            views = [batch, *(self._squeeze(name, batch) for name in self.squeezers_)]
            p = self._logits(torch.cat(views)).softmax(1).reshape(n_views, batch.shape[0], -1)
            return (p[1:] - p[0]).abs().sum(2).amax(0)

        rows = max(1, self.batch_size // n_views)
        return _model.run_batched(self.model, x, run, batch_size=rows)
