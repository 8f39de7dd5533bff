"""Least-squares density difference drift test with a permutation test: :class:`LSDDDrift`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch

from detectors._validation import Constraint, Interval, Options
from detectors.drift.base import DriftDetector
from detectors.drift.kernels import (
    gaussian_kernel,
    median_heuristic,
    permutation_masks,
    permutation_p_value,
    resolve_device,
)
from detectors.drift.mmd import DEVICE, PREPROCESS, SEED, SIGMA
from detectors.drift.preprocess import Preprocessor
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError

__all__ = ["LSDDDrift"]

_LAMBDAS = 4.0 ** -np.arange(10)  # candidate regularisations, largest first
_SPLITS = 50  # random splits of the reference that choose lambda in fit


class LSDDDrift(DriftDetector):
    """Multivariate drift test: least-squares density difference with a permutation test.

    The density difference ``f_ref - f_x`` is fitted by ``sum_l theta_l k(., c_l)`` on ``b``
    Gaussian kernels centred on reference rows; with ``h_l = mean_ref k(., c_l) - mean_x k(.,
    c_l)`` and ``H_lm = exp(-||c_l - c_m||^2 / (4 sigma^2))``, the regularised estimate of
    ``int (f_ref - f_x)^2`` is ``LSDD = h' (2 A - A H A) h`` with ``A = (H + lambda I)^-1``
    (Bu et al. 2017, eq. 11; up to the constant ``(pi sigma^2)^(d/2)``). The p-value is
    ``(k + 1) / (P + 1)`` over ``P`` random re-splits of the pooled sample.

    Parameters
    ----------
    p_val : float, default=0.05
        Significance level, in (0, 1).
    n_permutations : int, default=100
        Random re-splits of the pooled sample.
    sigma : float or None, default=None
        Kernel bandwidth on standardised data; None fits the median heuristic.
    n_kernel_centers : int or None, default=None
        Reference rows used as kernel centres (and not as reference); None uses
        ``max(1, n_ref // 20)``.
    lambda_rd_max : float, default=0.2
        ``lambda`` is the largest of ``1, 1/4, ..., 4^-9`` whose mean relative difference
        ``1 - theta' H theta / h' theta`` over random splits of the reference stays below this.
    preprocess : Preprocessor or None, default=None
        Maps inputs to a low dimension first; fitted on the reference, saved with it.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the permutations run.
    seed : int or None, default=0
        Seeds the centres, the bandwidth subsample, the lambda splits and the permutations.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_dims,)
        Reference mean and standard deviation; inputs are standardised with them.
    centers_ : ndarray of shape (b, n_dims)
        Kernel centres (standardised).
    x_ref_ : ndarray of shape (n_reference - b, n_dims)
        The rest of the (standardised) reference.
    h_inverse_ : ndarray of shape (b, b)
        ``2 A - A H A`` for the chosen ``lambda``.
    sigma_, lambda_ : float
        Bandwidth and regularisation in use.

    Notes
    -----
    ``test`` computes the (n + m, b) kernel features of the pooled sample once and every
    permuted ``h`` with one product of the (P + 1, n + m) split masks with them.

    References
    ----------
    L. Bu, C. Alippi and D. Zhao, "A pdf-free change detection test based on density
    difference estimation", IEEE Trans. Neural Netw. Learn. Syst. 29 (2017), 324-334.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> det = LSDDDrift(seed=0).fit(rng.normal(size=(400, 3)))
    >>> det.test(rng.normal(size=(100, 3))).p_value
    0.8514851485148515
    >>> r = det.test(rng.normal(size=(100, 3)) * [1.0, 1.8, 1.0])
    >>> r.is_drift, r.p_value
    (True, 0.009900990099009901)
    """

    name = "lsdd"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "p_val": Interval(Real, 0, 1, closed="neither"),
        "n_permutations": Interval(Integral, 1, None),
        "sigma": SIGMA,
        "n_kernel_centers": [Options((None,)), Interval(Integral, 1, None)],
        "lambda_rd_max": Interval(Real, 0, 1, closed="neither"),
        "preprocess": PREPROCESS,
        "device": DEVICE,
        "seed": SEED,
    }

    def __init__(
        self,
        p_val: float = 0.05,
        n_permutations: int = 100,
        sigma: float | None = None,
        n_kernel_centers: int | None = None,
        lambda_rd_max: float = 0.2,
        preprocess: Preprocessor | None = None,
        device: str = "auto",
        seed: int | None = 0,
    ) -> None:
        self.p_val = p_val
        self.n_permutations = n_permutations
        self.sigma = sigma
        self.n_kernel_centers = n_kernel_centers
        self.lambda_rd_max = lambda_rd_max
        self.preprocess = preprocess
        self.device = device
        self.seed = seed
        self._validate_params()

    def _fit(self, x_ref: np.ndarray) -> None:
        if self.preprocess is not None:
            x_ref = self.preprocess.fit(x_ref).transform(x_ref)
        n = x_ref.shape[0]
        b = self.n_kernel_centers or max(1, n // 20)
        if n < b + 4:
            raise DataError(f"{type(self).__name__} with {b} kernel centres needs at least "
                            f"{b + 4} reference rows; got {n}.")  # fmt: skip
        rng = np.random.default_rng(self.seed)
        self.mean_, sd = x_ref.mean(0), x_ref.std(0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        z = (x_ref - self.mean_) / self.scale_
        self.sigma_ = float(self.sigma) if self.sigma is not None else median_heuristic(z, rng)
        order = rng.permutation(n)
        self.centers_, self.x_ref_ = z[order[:b]], z[order[b:]]
        self._restore_kernels()
        h = self._h_matrix().cpu().numpy()
        phi = self._phi_ref.cpu().numpy()
        masks = permutation_masks(len(phi) - len(phi) // 2, len(phi) // 2, _SPLITS, rng)[1:]
        diffs = _mean_differences(phi, masks)
        for lam in _LAMBDAS:  # alibi-detect's rule (Bu et al. 2017, appendix A)
            theta = np.linalg.solve(h + lam * np.eye(b), diffs.T).T
            rd = 1 - ((theta @ h) * theta).sum(1) / (diffs * theta).sum(1)
            if rd.mean() < self.lambda_rd_max:
                break
        a = np.linalg.inv(h + lam * np.eye(b))
        self.lambda_, self.h_inverse_ = float(lam), 2 * a - a @ h @ a

    def _restore(self) -> None:
        self._restore_kernels()

    def _restore_kernels(self) -> None:
        self._device = resolve_device(self.device)
        self._centers = torch.as_tensor(self.centers_, device=self._device)
        ref = torch.as_tensor(self.x_ref_, device=self._device)
        self._phi_ref = gaussian_kernel(ref, self._centers, self.sigma_)

    def _h_matrix(self) -> torch.Tensor:
        return gaussian_kernel(self._centers, self._centers, np.sqrt(2.0) * self.sigma_)

    def _test(self, x: np.ndarray) -> DriftResult:
        if self.preprocess is not None:
            x = self.preprocess.transform(x)
        z = torch.as_tensor((x - self.mean_) / self.scale_, device=self._device)
        phi = torch.cat([self._phi_ref, gaussian_kernel(z, self._centers, self.sigma_)])
        n, m = self._phi_ref.shape[0], x.shape[0]
        masks = permutation_masks(n, m, self.n_permutations, np.random.default_rng(self.seed))
        diffs = _mean_differences(phi, torch.as_tensor(masks, device=self._device))
        h_inv = torch.as_tensor(self.h_inverse_, device=self._device)
        stats = ((diffs @ h_inv) * diffs).sum(1).cpu().numpy()
        p_value = permutation_p_value(stats)
        return DriftResult(
            is_drift=p_value <= self.p_val, p_value=p_value, statistic=float(stats[0]),
            threshold=self.p_val, p_val=self.p_val, feature_p_values=None,
            feature_statistics=None, n_reference=self.n_reference_, n_test=m,
            detector=self.name,
        )  # fmt: skip


def _mean_differences(phi, masks):
    """``mean_{group 0} phi - mean_{group 1} phi`` for every split mask (1 marks group 1)."""
    m = masks[0].sum()
    n = masks.shape[1] - m
    in_1 = masks @ phi
    return (phi.sum(0) - in_1) / n - in_1 / m
