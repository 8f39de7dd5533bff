"""The demo's model: a small classifier trained on scikit-learn's bundled digits in seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray  # (n, 64) pixel intensities in [0, 16]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> DigitsSplit:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float64)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return DigitsSplit(x[train], y[train], x[test], y[test])


class DigitsModel:
    """A two-layer perceptron on the 64 pixels (scaled to [0, 1] inside)."""

    def __init__(self, net: nn.Module):
        self.net = net.eval()

    @classmethod
    def train(cls, x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 200) -> DigitsModel:
        generator = torch.Generator().manual_seed(seed)
        net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
        xt = torch.as_tensor(x / 16.0, dtype=torch.float32)
        yt = torch.as_tensor(y)
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(epochs):
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(xt), yt).backward()
            optimiser.step()
        return cls(net)

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.net(torch.as_tensor(x / 16.0, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()

    def save_torchscript(self, path: str) -> None:
        """Save the network, scaling included (inputs in [0, 16]), as TorchScript."""
        torch.jit.script(_Scaled(self.net)).save(path)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict_proba(x).argmax(1) == y).mean())


class _Scaled(nn.Module):
    """The network on raw pixel intensities in [0, 16], flat or as (N, 1, 8, 8) images."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1) / 16.0)
