"""Gaussian RBF kernels, the median heuristic and vectorised permutation statistics.

Small pure helpers shared by :class:`~detectors.drift.MMDDrift`,
:class:`~detectors.drift.LSDDDrift` and :class:`~detectors.drift.MMDDriftOnline`.
"""

from __future__ import annotations

import numpy as np
import torch

from detectors.exceptions import DeviceError

__all__ = [
    "bootstrap_window_mmd2",
    "gaussian_kernel",
    "gaussian_kernel_np",
    "median_heuristic",
    "permutation_masks",
    "permutation_p_value",
    "resolve_device",
    "unbiased_mmd2",
]

_MEDIAN_ROWS = 1000  # the median heuristic looks at most at this many reference rows


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device='cuda' was asked for, but CUDA is not available here.")
    return torch.device(device)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))`` for all pairs: shape (len(x), len(y))."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return torch.exp(d2.clamp_min_(0.0).mul_(-0.5 / sigma**2))


def gaussian_kernel_np(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`gaussian_kernel` on numpy arrays (the online detectors' per-event path)."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.exp(np.maximum(d2, 0.0) * (-0.5 / sigma**2))


def median_heuristic(x: np.ndarray, rng: np.random.Generator) -> float:
    """Bandwidth ``sigma = sqrt(median_{i<j} ||x_i - x_j||^2 / 2)`` (Gretton et al. 2012).

    With it, ``k(x, y) = exp(-||x - y||^2 / median)``. Beyond 1,000 rows a seeded random
    subset of 1,000 is used. A median of 0 (mostly repeated rows) falls back to the mean of
    the positive squared distances, and to 1 when all rows are equal.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4: median 4
    >>> median_heuristic(x, np.random.default_rng(0))
    1.4142135623730951
    """
    if x.shape[0] > _MEDIAN_ROWS:
        x = x[rng.choice(x.shape[0], _MEDIAN_ROWS, replace=False)]
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    d2 = d2[np.triu_indices(x.shape[0], k=1)]
    median = float(np.median(d2))
    if median <= 0.0:
        median = float(d2[d2 > 0].mean()) if (d2 > 0).any() else 2.0
    return float(np.sqrt(median / 2.0))


def permutation_masks(n: int, m: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 masks of shape (n_permutations + 1, n + m), each with ``m`` ones (the test group).

    Row 0 is the observed split (the last ``m`` points); the others are uniform random splits.
    """
    keys = rng.random((n_permutations, n + m))
    masks = np.zeros((n_permutations + 1, n + m))
    np.put_along_axis(masks[1:], np.argpartition(keys, m, axis=1)[:, :m], 1.0, axis=1)
    masks[0, n:] = 1.0
    return masks


def unbiased_mmd2(
    k_rr: torch.Tensor, k_xr: torch.Tensor, k_xx: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """Unbiased MMD² of every split in ``masks`` from the blocks of the pooled kernel matrix.

    With ``b`` the 0/1 mask of the ``m``-point group and ``a = 1 - b`` the ``n``-point one,
    ``MMD²_u = (a'Ka - a'diag K) / (n(n-1)) + (b'Kb - b'diag K) / (m(m-1)) - 2 a'Kb / (nm)``
    (Gretton et al. 2012, eq. 3). Every ``a'Ka`` and ``a'Kb`` follows from ``b'Kb`` and
    ``b'K1``, so all splits cost one batched product ``masks @ K``, O(P (n + m)^2), in the
    kernel's dtype; the sums are then combined in float64.
    """
    n, m = k_rr.shape[0], k_xx.shape[0]
    masks = masks.to(k_rr.dtype)
    mr, mx = masks[:, :n], masks[:, n:]
    q = ((mr @ k_rr + mx @ k_xr) * mr).sum(1) + ((mr @ k_xr.T + mx @ k_xx) * mx).sum(1)
    q = q.double()  # the products run in the kernel's dtype; the sums are combined in float64
    row = torch.cat(
        [
            k_rr.sum(1, dtype=torch.float64) + k_xr.sum(0, dtype=torch.float64),
            k_xr.sum(1, dtype=torch.float64) + k_xx.sum(1, dtype=torch.float64),
        ]
    )
    diag = torch.cat([k_rr.diagonal(), k_xx.diagonal()]).double()
    masks = masks.double()
    s, dy = masks @ row, masks @ diag
    k_xy = s - q
    k_yy = q - dy
    k_aa = row.sum() - 2.0 * s + q - (diag.sum() - dy)
    return k_aa / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2.0 * k_xy / (n * m)


def permutation_p_value(stats: np.ndarray) -> float:
    """``(k + 1) / (P + 1)`` with ``k`` the permuted statistics ``>=`` the observed ``stats[0]``.

    Never 0: the observed split counts as one of the ``P + 1`` equally likely ones.

    Examples
    --------
    >>> permutation_p_value(np.array([0.5, 0.1, 0.7, 0.2, 0.5]))
    0.6
    """
    return float((1 + np.sum(stats[1:] >= stats[0])) / stats.size)


def bootstrap_window_mmd2(
    k: np.ndarray,
    sums: tuple[np.ndarray, float],
    n_sub: int,
    w: int,
    n_streams: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """MMD² of ``n_streams`` bootstrap streams at steps 1..w, shape (n_streams, w).

    Each stream splits the reference at random: ``n_sub`` rows play the sub-reference and the
    other ``2w - 1``, in random order, the stream, whose windows at steps w..2w-1 are
    ``[t, t + w)`` for ``t = 0..w-1``. Every
    sum comes from ``k`` and ``sums`` (its row sums and off-diagonal total): the
    sub-reference terms from row sums minus the stream's block
    ``G``; the window sums ``F_t`` (all pairs of window ``t``) by sliding along ``G``'s
    diagonal, ``F_{t+1} = F_t - 2 G[t, t:t+w].sum() + G[t, t] + 2 G[t+w, t+1:t+w+1].sum()
    - G[t+w, t+w]``, read off one cumulative sum of ``G``'s rows.
    """
    n, length = k.shape[0], 2 * w - 1
    order = rng.permuted(np.broadcast_to(np.arange(n), (n_streams, n)), axis=1)[:, n_sub:]
    block = k.ravel().take(order[:, :, None] * n + order[:, None, :])  # (streams, L, L)
    row_c = np.zeros((n_streams, length, length + 1))
    np.cumsum(block, axis=2, out=row_c[:, :, 1:])
    row, block_rows = sums[0][order], row_c[:, :, -1]
    diag = np.diagonal(block, axis1=1, axis2=2)
    pairs_all = sums[1] - 2.0 * (row.sum(1) - block_rows.sum(1))
    sub_pairs = pairs_all - (block_rows.sum(1) - diag.sum(1))
    cross = (row - block_rows) / n_sub  # mean kernel to the sub-reference
    t = np.arange(w - 1)
    out_ = row_c[:, t, t + w] - row_c[:, t, t]  # row t over the window [t, t + w)
    in_ = row_c[:, t + w, t + w + 1] - row_c[:, t + w, t + 1]  # row t + w over [t + 1, t + w]
    first = (row_c[:, :w, w] - row_c[:, :w, 0]).sum(1, keepdims=True)
    steps = -2.0 * out_ + diag[:, : w - 1] + 2.0 * in_ - diag[:, w:]
    full = np.concatenate([first, first + np.cumsum(steps, axis=1)], axis=1)
    diag_c = np.concatenate([np.zeros((n_streams, 1)), diag.cumsum(1)], axis=1)
    cross_c = np.concatenate([np.zeros((n_streams, 1)), cross.cumsum(1)], axis=1)
    a = np.arange(w)
    pairs = full - (diag_c[:, a + w] - diag_c[:, a])
    mean_cross = (cross_c[:, a + w] - cross_c[:, a]) / w
    return (sub_pairs / (n_sub * (n_sub - 1)))[:, None] + pairs / (w * (w - 1)) - 2.0 * mean_cross
