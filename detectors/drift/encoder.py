"""A random, untrained MLP encoder as preprocessing: :class:`UntrainedEncoder`."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
import torch

from detectors._validation import Constraint, Interval
from detectors.drift.preprocess import Preprocessor

__all__ = ["UntrainedEncoder"]


class UntrainedEncoder(Preprocessor):
    """A randomly initialised, never trained MLP encoder ``x -> W2 relu(W1 x + b1) + b2``.

    Random features of this kind keep enough of the input geometry for kernel tests to see
    shifts, at no training cost: the "untrained autoencoder" of Rabanser et al. (2019).

    Parameters
    ----------
    n_components : int, default=32
        Output dimension.
    hidden : int, default=128
        Width of the hidden layer.
    seed : int, default=0
        Seeds the weights (PyTorch's default initialisation, from a private generator).

    Attributes
    ----------
    weights_ : dict of str to ndarray
        ``W1, b1, W2, b2`` (float32), saved as safetensors.

    References
    ----------
    S. Rabanser, S. Günnemann and Z. C. Lipton, "Failing loudly: an empirical study of methods
    for detecting dataset shift", NeurIPS 2019.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(5, 100))
    >>> enc = UntrainedEncoder(n_components=8, seed=0).fit(x)
    >>> enc.transform(x).shape, sorted(enc.weights_)
    ((5, 8), ['0.bias', '0.weight', '2.bias', '2.weight'])
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_components": Interval(Integral, 1, None),
        "hidden": Interval(Integral, 1, None),
        "seed": Interval(Integral, 0, None),
    }

    def __init__(self, n_components: int = 32, hidden: int = 128, seed: int = 0) -> None:
        self.n_components = n_components
        self.hidden = hidden
        self.seed = seed
        self._validate_params()

    def _network(self, n_features: int) -> torch.nn.Sequential:
        return torch.nn.Sequential(
            torch.nn.Linear(n_features, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.n_components),
        )

    def _fit(self, x: np.ndarray) -> None:
        net = self._network(x.shape[1])
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for layer in (net[0], net[2]):  # PyTorch's Linear init, drawn from our generator
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)
        self.weights_ = {k: v.numpy().copy() for k, v in net.state_dict().items()}

    def _restore(self) -> None:
        self._net = self._network(self.weights_["0.weight"].shape[1])
        self._net.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights_.items()})

    def _transform(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._net(torch.as_tensor(x, dtype=torch.float32)).numpy()
