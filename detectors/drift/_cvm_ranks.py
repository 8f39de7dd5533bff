"""The two-sample Cramér-von Mises statistic of a window from its ranks in the reference,
and the simulation of those ranks without drift (for :class:`~detectors.drift.CVMDriftOnline`).

With ``k_i`` the number of reference values below window value ``i`` (``n`` reference values,
window of ``w``), Anderson's ``T`` depends only on ``S1 = sum k``, ``S2 = sum k^2`` and
``M = sum_{i<j} max(k_i, k_j)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalised_cvm", "null_ranks", "window_cvm"]


def normalised_cvm(s1: np.ndarray, s2: np.ndarray, mx: np.ndarray, n: int, w: int) -> np.ndarray:
    """Normalised CvM ``(T - E T) / sd T`` from the window's rank sums (Anderson 1962)."""
    ref_part = ((n + 1) * (2 * n + 1) / (6 * n) - (w * n * (n + 1) - s2 - s1) / (n * w)
                + (w * w * n - 2 * mx - s1) / (w * w))  # fmt: skip
    win_part = s2 / n**2 - 2 * (s1 + mx) / (n * w) + (w + 1) * (2 * w + 1) / (6 * w)
    big_n = n + w
    t = n * w / big_n**2 * (ref_part + win_part)
    mean = (1 + 1 / big_n) / 6
    var = (
        (big_n + 1)
        * (4 * n * w * big_n - 3 * (n * n + w * w) - 2 * n * w)
        / (45 * big_n**2 * 4 * n * w)
    )
    return (t - mean) / np.sqrt(var)


def null_ranks(n_streams: int, n_steps: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Ranks among ``n`` reference values of ``n_steps`` new values, all i.i.d. continuous.

    Given the reference, a new value falls in each of its ``n + 1`` gaps with that gap's
    (Dirichlet(1, ..., 1)) probability: a Pólya urn with one ball per gap. Each step draws a
    fresh gap with probability ``(n + 1) / (n + 1 + t)``, else repeats an earlier step's.
    """
    ranks = np.empty((n_streams, n_steps))
    rows = np.arange(n_streams)
    for t in range(n_steps):
        ranks[:, t] = rng.integers(0, n + 1, n_streams)
        if t:
            repeat = rng.random(n_streams) < t / (n + 1 + t)
            ranks[repeat, t] = ranks[rows[repeat], rng.integers(0, t, repeat.sum())]
    return ranks


def window_cvm(ranks: np.ndarray, w: int, n: int) -> np.ndarray:
    """Normalised CvM of every full window of ``w`` steps, shape (n_streams, n_steps - w + 1).

    ``M`` is summed lag by lag: for lag ``l``, the pairs ``(i - l, i)`` inside the window
    ending before ``e`` are a contiguous run of ``max(r[i - l], r[i])``, read off a cumsum.
    """
    zeros = np.zeros((ranks.shape[0], 1))
    c1 = np.concatenate([zeros, ranks.cumsum(1)], axis=1)
    c2 = np.concatenate([zeros, (ranks * ranks).cumsum(1)], axis=1)
    e = np.arange(w, ranks.shape[1] + 1)
    mx = np.zeros((ranks.shape[0], e.size))
    for lag in range(1, w):
        c = np.concatenate([zeros, np.maximum(ranks[:, lag:], ranks[:, :-lag]).cumsum(1)], axis=1)
        mx += c[:, e - lag] - c[:, e - w]
    return normalised_cvm(c1[:, e] - c1[:, e - w], c2[:, e] - c2[:, e - w], mx, n, w)
