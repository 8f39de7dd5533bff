"""Noise consistency: :class:`NoiseConsistency`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch

from detectors import _model
from detectors._validation import Constraint, Interval
from detectors.adversarial.base import FPR, ModelInputDetector

__all__ = ["NoiseConsistency", "noise_flips"]


def noise_flips(
    model: torch.nn.Module,
    batch: torch.Tensor,
    sigma: float,
    n_samples: int,
    generator: torch.Generator,
    caller: str = "noise_flips",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predict ``n_samples`` copies ``x + N(0, σ² I)`` of each row of ``batch``.

    The Monte-Carlo step of randomized smoothing (Cohen et al. 2019), on the model's device.
    Returns, per row, the number of copies whose predicted class differs from that of ``x``
    and the mean softmax probability of that class over the copies.

    >>> flips, p = noise_flips(torch.nn.Identity(), torch.tensor([[0.0, 5.0], [0.0, 0.01]]),
    ...                        1.0, 200, torch.Generator().manual_seed(0))
    >>> flips.tolist(), [round(v, 2) for v in p.tolist()]
    ([0, 101], [0.98, 0.48])
    """
    z = _model.logits(model, batch, caller)
    label = z.argmax(1)
    noise = torch.randn((n_samples, *batch.shape), generator=generator, device=batch.device)
    noisy = (batch.unsqueeze(0) + sigma * noise.to(batch.dtype)).reshape(-1, *batch.shape[1:])
    zn = _model.logits(model, noisy, caller).reshape(n_samples, batch.shape[0], -1)
    flips = (zn.argmax(2) != label).sum(0)
    index = label.expand(n_samples, -1).unsqueeze(2)
    return flips, zn.softmax(2).gather(2, index)[..., 0].mean(0)


class NoiseConsistency(ModelInputDetector):
    """Flags inputs whose prediction is unstable under Gaussian noise.

    Minimal-perturbation adversarial examples sit just across the decision boundary, so
    random noise often sends them back, while clean inputs mostly lie deeper inside their
    class (Hu et al. 2019; Roth, Kilcher & Hofmann 2019). With ``m`` of ``k`` noisy copies
    predicted differently from ``x`` and ``p̄`` the copies' mean probability of ``x``'s class,
    the score is ``(m + 1 - p̄) / (k + 1)``: the flip fraction, its ties broken by how much
    probability the noise takes from the predicted class, so that a threshold can meet any
    ``fpr`` although ``m`` takes only ``k + 1`` values. The threshold is the ``(1 - fpr)``
    conformal quantile of the reference scores.

    Parameters
    ----------
    model : torch.nn.Module
        The monitored model, returning logits; run batched on its own device.
    fpr : float, default=0.05
        Target false-positive rate on clean inputs, in (0, 1).
    sigma : float, default=0.1
        Noise standard deviation in input units (a tenth of a [0, 1] range): large enough to
        cross the small margin of a minimal perturbation, small enough that clean inputs
        keep their class.
    n_samples : int, default=16
        Noisy copies ``k`` per input; cost is ``k + 1`` forward passes per input.
    seed : int, default=0
        Seeds the private generator of the noise (on the model's device). Answers for one
        input vary across calls by Monte-Carlo error; two detectors with the same seed fed
        the same batches answer identically.
    input_shape : sequence of int or None, default=None
        Shape of one input (default: that of ``x_ref``'s rows); rows may come flat.
    batch_size : int, default=256
        Rows per forward pass, noisy copies included.

    Attributes
    ----------
    threshold_ : float

    References
    ----------
    S. Hu, T. Yu, C. Guo, W.-L. Chao, K. Q. Weinberger, "A new defense against adversarial
    images: turning a weakness into a strength", NeurIPS 2019.
    K. Roth, Y. Kilcher, T. Hofmann, "The odds are odd: a statistical test for detecting
    adversarial examples", ICML 2019.
    J. Cohen, E. Rosenfeld, Z. Kolter, "Certified adversarial robustness via randomized
    smoothing", ICML 2019.

    Examples
    --------
    The logits are the inputs: a point at the boundary flips, one far from it does not.

    >>> x = np.random.default_rng(0).normal(size=(100, 2)) + [3.0, 0.0]
    >>> det = NoiseConsistency(torch.nn.Identity(), sigma=0.5, seed=0).fit(x)
    >>> det.predict([[3.0, 0.0], [0.01, 0.0]]).tolist()
    [False, True]
    """

    name = "noise"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        **ModelInputDetector._model_constraints,
        "fpr": FPR,
        "sigma": Interval(Real, 0, None, closed="neither"),
        "n_samples": Interval(Integral, 1, None),
        "seed": Interval(Integral, 0, None),
    }

    def __init__(
        self,
        model: torch.nn.Module,
        fpr: float = 0.05,
        sigma: float = 0.1,
        n_samples: int = 16,
        seed: int = 0,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.fpr = fpr
        self.sigma = sigma
        self.n_samples = n_samples
        self.seed = seed
        self.input_shape = tuple(input_shape) if isinstance(input_shape, list) else input_shape
        self.batch_size = batch_size
        self._validate_params()

    def _restore(self) -> None:
        super()._restore()
        device = _model.model_device(self.model)[0]
        self._generator = torch.Generator(device=device).manual_seed(self.seed)

    def _learns_from(self, x_ref: np.ndarray) -> bool:
        return False

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        self._restore()
        return self._score(x)

    def _score(self, x: np.ndarray) -> np.ndarray:
        k = self.n_samples

        def run(batch: torch.Tensor) -> torch.Tensor:
            flips, p_bar = noise_flips(
                self.model, batch, self.sigma, k, self._generator, type(self).__name__
            )
            return (flips + 1 - p_bar) / (k + 1)

        rows = max(1, self.batch_size // (k + 1))
        return _model.run_batched(self.model, x, run, batch_size=rows)
