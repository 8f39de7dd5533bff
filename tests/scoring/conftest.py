"""Tiny digits classifiers shared by the scoring tests, trained once per run of this package.

scikit-learn's 8x8 digits, scaled to [0, 1] and shaped (N, 1, 8, 8); a 64-32-10 MLP trained
in about a second, the same MLP adversarially trained (FGSM with a random start, Wong, Rice &
Kolter 2020) at L∞ eps 0.1, and the detectors tests' small CNN. Every draw comes from private
seeded generators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from tests.detectors.adversarial.digits import trained_cnn

ADV_EPS = 0.1


@dataclass(frozen=True)
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_mlp(seed: int, hidden: int = 32) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    layers = [
        torch.nn.utils.skip_init(torch.nn.Linear, 64, hidden),
        torch.nn.utils.skip_init(torch.nn.Linear, hidden, 10),
    ]
    for layer in layers:
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
        torch.nn.init.uniform_(layer.bias, -0.1, 0.1, generator=gen)
    return torch.nn.Sequential(torch.nn.Flatten(), layers[0], torch.nn.ReLU(), layers[1])


def train(model, x, y, *, epochs: int, seed: int, adv_eps: float = 0.0, noise: float = 0.0):
    """Adam on minibatches of 64; FGSM-RS adversarial examples or Gaussian noise if asked."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(x.shape[0], generator=gen).split(64):
            xb, yb = x[idx], y[idx]
            if noise:
                xb = xb + noise * torch.randn(xb.shape, generator=gen)
            if adv_eps:
                delta = (torch.rand(xb.shape, generator=gen) * 2 - 1) * adv_eps
                delta.requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(model(xb + delta), yb), delta)
                delta = (delta + 1.25 * adv_eps * g.sign()).clamp(-adv_eps, adv_eps)
                xb = (xb + delta.detach()).clamp(0, 1)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)  # tests check that attacks leave parameter grads alone
    return model.eval()


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription
    (3x faster here); restored when the scoring tests are done."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def digits() -> Digits:
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return Digits(x[:1200], y[:1200], x[1200:], y[1200:])


@pytest.fixture(scope="package")
def standard_model(digits):
    return train(make_mlp(1), digits.x_train, digits.y_train, epochs=30, seed=1)


@pytest.fixture(scope="package")
def cnn_model():
    """The detectors tests' digits CNN (cached, trained once per run; its own data split),
    on which attacks run in channels-last memory (:class:`scoring.inputs.ChannelsLast`)."""
    return trained_cnn()


@pytest.fixture(scope="package")
def robust_model(digits):
    model = train(make_mlp(2), digits.x_train, digits.y_train, epochs=30, seed=2)
    return train(model, digits.x_train, digits.y_train, epochs=30, seed=3, adv_eps=ADV_EPS)


@pytest.fixture(scope="package")
def noisy_model(digits):
    """Trained on Gaussian noise of sigma 0.25, for randomized smoothing."""
    return train(make_mlp(4), digits.x_train, digits.y_train, epochs=30, seed=4, noise=0.25)


@pytest.fixture(scope="package")
def batch(digits):
    """200 test points: enough to compare attacks, small enough for CPU."""
    return digits.x_test[:200], digits.y_test[:200]
