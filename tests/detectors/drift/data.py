"""Data factories shared by the drift tests."""

from __future__ import annotations

import numpy as np


def numeric(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.normal(size=(n, d))


def categorical(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.integers(0, 4, size=(n, d)).astype(float)


def probabilities(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    logits = rng.normal(size=(n, d)) * 2.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def mixed(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    x[:, 1::2] = rng.integers(0, 3, size=(n, d // 2))
    return x
