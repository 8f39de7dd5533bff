"""What the peer comparisons share: data, models, the plain-torch floor and peer adapters.

Used by ``benchmarks/attacks.py`` and ``tests/peers/``, both run in the peers virtualenv
(``make peers``). Importing this module needs only torch, numpy and scikit-learn; the peers
(torchattacks, the Adversarial Robustness Toolbox) are imported inside the functions that
call them, so that robustwatch never depends on them.

Every draw comes from a private seeded generator, except inside the peers, which read the
global torch and numpy generators: :func:`torchattacks_attack` and :func:`art_pgd` seed those
right before the call.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Digits",
    "ResNet18",
    "art_classifier",
    "art_pgd",
    "art_smoothing",
    "load_digits",
    "make_cnn",
    "make_mlp",
    "plain_pgd",
    "robust_accuracy",
    "torchattacks_attack",
    "train",
]


@dataclass(frozen=True)
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(seed: int = 0, n_train: int = 1200) -> Digits:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], shaped (N, 1, 8, 8), shuffled."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return Digits(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def make_mlp(seed: int, hidden: int = 32) -> torch.nn.Sequential:
    """A 64-``hidden``-10 ReLU classifier of 8x8 inputs, initialised from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    first, last = torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, 10)
    with torch.no_grad():
        for layer in (first, last):
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-0.1, 0.1, generator=gen)
    return torch.nn.Sequential(torch.nn.Flatten(), first, torch.nn.ReLU(), last)


def make_cnn(seed: int) -> torch.nn.Sequential:
    """A small CNN for 8x8 inputs: two 3x3 convolutions (16 and 32 channels), a 2x2 max-pool,
    a hidden layer of 64 and 10 logits; initialised from ``seed`` (about 38 k parameters)."""
    with torch.random.fork_rng(devices=[]):  # torch's initialisers read the global generator
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(32 * 4 * 4, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )


def train(model, x, y, *, epochs: int, seed: int, noise: float = 0.0, adv_eps: float = 0.0):
    """Adam (lr 3e-3) on minibatches of 64, with Gaussian noise of scale ``noise`` or FGSM
    examples from a random start (Wong, Rice & Kolter 2020) at L∞ ``adv_eps`` if asked."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(x.shape[0], generator=gen).split(64):
            xb, yb = x[idx], y[idx]
            if noise:
                xb = xb + noise * torch.randn(xb.shape, generator=gen)
            if adv_eps:
                delta = ((torch.rand(xb.shape, generator=gen) * 2 - 1) * adv_eps).requires_grad_()
                (g,) = torch.autograd.grad(F.cross_entropy(model(xb + delta), yb), delta)
                delta = (delta + 1.25 * adv_eps * g.sign()).clamp(-adv_eps, adv_eps)
                xb = (xb + delta.detach()).clamp(0, 1)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


class _Block(torch.nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.shortcut = torch.nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(torch.nn.Module):
    """ResNet-18 for 32x32 inputs (He et al. 2016, CIFAR variant: a 3x3 stem, no max-pool),
    stages of 64-128-256-512 channels with two basic blocks each; about 11.2 M parameters."""

    def __init__(self, n_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU()
        )
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
            cin = cout
        self.blocks = torch.nn.Sequential(*blocks)
        self.head = torch.nn.Linear(512, n_classes)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # redrawn from a private generator, not the global one
            for p in self.parameters():
                if p.dim() > 1:
                    torch.nn.init.kaiming_normal_(
                        p, mode="fan_out", nonlinearity="relu", generator=gen
                    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


def plain_pgd(model, x, y, *, eps: float, alpha: float, steps: int, seed: int = 0):
    """The floor: L∞ PGD as the bare loop, ``steps`` x (forward + backward), nothing else.

    No success bookkeeping, no early exit, no validation: what any PGD must at least cost.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    noise = torch.rand(x.shape, generator=gen, device=x.device)
    xa = (x + (noise * 2 - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    return xa


@torch.no_grad()
def robust_accuracy(
    model,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor | None = None,
    eps: float | None = None,
) -> float:
    """Fraction of ``x_adv`` still classified as ``y``; checks the L∞ budget when given."""
    if x is not None and eps is not None:
        excess = float((x_adv - x).abs().amax()) - eps
        if excess > 1e-5:
            raise AssertionError(f"an adversarial input leaves the eps={eps} ball by {excess}")
    return float((model(x_adv).argmax(1) == y).float().mean())


def torchattacks_attack(name: str, model, x, y, *, seed: int = 0, **kwargs: Any):
    """Run ``torchattacks.<name>(model, **kwargs)`` on ``(x, y)``, seeded: the global torch
    generator (PGD's random start) and the attack's own ``seed`` where it has one (APGD and
    Square reseed the global generator from it)."""
    import torchattacks

    cls = getattr(torchattacks, name)
    if "seed" in inspect.signature(cls).parameters:
        kwargs["seed"] = seed
    torch.manual_seed(seed)
    return cls(model, **kwargs)(x, y)


def art_classifier(model, input_shape: tuple[int, ...], n_classes: int, device: str = "cpu"):
    """ART's ``PyTorchClassifier`` around ``model``: inputs in [0, 1], cross-entropy loss."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if str(device).startswith("cuda") else "cpu",
    )


def art_pgd(
    classifier, x, y, *, eps: float, alpha: float, steps: int, seed: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """ART's ``ProjectedGradientDescent`` (L∞, one random start) on numpy copies of ``(x, y)``;
    the adversarial inputs come back as a tensor on ``x``'s device."""
    from art.attacks.evasion import ProjectedGradientDescent

    np.random.seed(seed)  # ART draws its random start from numpy's global generator
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=1,
        batch_size=batch_size,
        verbose=False,
    )
    x_adv = attack.generate(x.detach().cpu().numpy(), y=y.detach().cpu().numpy())
    return torch.from_numpy(x_adv).to(x.device)


def art_smoothing(
    model,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    sigma: float,
    n0: int,
    alpha: float,
    device: str = "cpu",
):
    """ART's ``PyTorchRandomizedSmoothing`` (Cohen et al.'s CERTIFY) around ``model``."""
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    return PyTorchRandomizedSmoothing(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if str(device).startswith("cuda") else "cpu",
        sample_size=n0,
        scale=sigma,
        alpha=alpha,
    )
