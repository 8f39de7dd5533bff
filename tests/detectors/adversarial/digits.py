"""scikit-learn's 8x8 digits and a small CNN trained on them, built once per test process.

Images are scaled from [0, 16] to [0, 1] and shaped (N, 1, 8, 8); a seeded permutation splits
them into 900 to train on, 450 as the detectors' clean reference and 447 held out. Both
helpers are memoised, so that the conftests of several test packages share one model; the
global torch RNG is seeded only inside ``fork_rng`` and left as it was.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

EPOCHS = 12


@dataclass(frozen=True)
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_ref: np.ndarray
    y_ref: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.cache
def digits() -> Digits:
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(x.shape[0])
    x, y = x[perm], y[perm]
    return Digits(x[:900], y[:900], x[900:1350], y[900:1350], x[1350:], y[1350:])


def make_cnn() -> torch.nn.Sequential:
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


@functools.cache
def trained_cnn() -> torch.nn.Sequential:
    """The CNN after a few epochs of Adam on the 900 training digits (about 98% accuracy)."""
    data = digits()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared machine: threads only add contention
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = make_cnn()
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            for _ in range(EPOCHS):
                for idx in torch.randperm(x.shape[0]).split(64):
                    opt.zero_grad()
                    F.cross_entropy(model(x[idx]), y[idx]).backward()
                    opt.step()
    finally:
        torch.set_num_threads(threads)
    opt.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
