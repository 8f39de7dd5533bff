"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + δ) = c)``, ``δ ~ N(0, σ² I)``, is robust
around ``x`` within the L2 radius ``σ Φ⁻¹(p_A)`` whenever the top class has probability
``p_A > 1/2``. :func:`certify` and :func:`predict` are the paper's CERTIFY and PREDICT; the
noisy copies of many inputs share each batch on the model's device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from scoring._validation import check_int, check_real
from scoring.exceptions import ParameterError
from scoring.inputs import (
    ChannelsLast,
    as_inputs,
    as_labels,
    check_bounds,
    check_logits,
    eval_mode,
    placed,
    resolve_device,
)
from scoring.stats import clopper_pearson_lower

__all__ = ["ABSTAIN", "CertifyResult", "certify", "certify_counts", "predict", "predict_counts"]

ABSTAIN = -1


@dataclass(frozen=True, eq=False)
class CertifyResult:
    """CERTIFY's answer for N inputs: class or ``ABSTAIN`` (-1), and certified L2 radius.

    ``radius`` is 0 where the smoothed classifier abstains; ``p_lower`` is the one-sided
    Clopper-Pearson lower bound on ``p_A``; ``counts`` are the estimation-round votes.
    """

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    counts: np.ndarray
    sigma: float
    n0: int
    n: int
    alpha: float
    forward_passes: int
    seconds: float
    device: str

    def certified_accuracy(self, y: Any, radii: Sequence[float]) -> tuple[float, ...]:
        """Fraction certified correct at each radius: ``prediction == y`` and ``radius >= r``."""
        y = as_labels(y, len(self.prediction), self.counts.shape[1], torch.device("cpu")).numpy()
        ok = self.prediction == y
        return tuple(float(np.mean(ok & (self.radius >= r))) for r in radii)

    def to_dict(self, y: Any = None, radii: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)):
        """JSON-ready summary; certified accuracy at ``radii`` when labels ``y`` are given."""
        d: dict[str, Any] = {
            "n_inputs": len(self.prediction),
            "sigma": self.sigma,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
            "abstain_rate": float(np.mean(self.prediction == ABSTAIN)),
            "median_radius": float(np.median(self.radius)),
            "device": self.device,
            "seconds": self.seconds,
            "forward_passes": self.forward_passes,
        }
        if y is not None:
            acc = self.certified_accuracy(y, radii)
            d["certified_accuracy"] = [
                {"radius": float(r), "accuracy": a} for r, a in zip(radii, acc, strict=True)
            ]
        return d


def certify_counts(counts0: Any, counts: Any, sigma: float, alpha: float):
    """CERTIFY from vote counts: ``(prediction, radius, p_lower)`` arrays.

    ``ĉ_A = argmax counts0`` (selection round), ``p_A = B(alpha; n_A, n - n_A + 1)`` from the
    estimation round, radius ``σ Φ⁻¹(p_A)`` if ``p_A > 1/2``, else ``ABSTAIN`` and radius 0.

    Examples
    --------
    >>> pred, radius, p = certify_counts([[90, 10]], [[990, 10]], sigma=0.5, alpha=0.001)
    >>> pred.tolist(), radius.round(4).tolist(), p.round(4).tolist()
    ([0], [0.989], [0.976])
    >>> certify_counts([[60, 40]], [[520, 480]], 0.5, 0.001)[0].tolist()  # p_A not > 1/2
    [-1]
    """
    counts0, counts = np.asarray(counts0), np.asarray(counts)
    top = counts0.argmax(1)
    n_a = counts[np.arange(len(top)), top]
    p_lower = clopper_pearson_lower(n_a, int(counts.sum(1)[0]) if len(top) else 0, alpha)
    ok = p_lower > 0.5
    radius = np.where(ok, sigma * stats.norm.ppf(np.where(ok, p_lower, 0.75)), 0.0)
    return np.where(ok, top, ABSTAIN), radius, p_lower


def predict_counts(counts: Any, alpha: float) -> np.ndarray:
    """PREDICT from vote counts: the top class if the two-sided binomial test of
    ``n_A`` against ``n_A + n_B`` at ``p = 1/2`` rejects at ``alpha``, else ``ABSTAIN``.

    >>> predict_counts([[65, 35, 0], [52, 48, 0]], alpha=0.05).tolist()
    [0, -1]
    """
    counts = np.asarray(counts)
    order = np.argsort(-counts, axis=1, kind="stable")
    n_a = np.take_along_axis(counts, order[:, :1], 1)[:, 0]
    n_b = np.take_along_axis(counts, order[:, 1:2], 1)[:, 0]
    p_value = np.minimum(1.0, 2 * stats.binom.cdf(n_b, n_a + n_b, 0.5))
    return np.where(p_value <= alpha, order[:, 0], ABSTAIN)


def _votes(model, x, sigma, num, batch_size, gen, n_classes, layout) -> torch.Tensor:
    """Counts of ``argmax f(x_i + δ)`` over ``num`` draws per input, many inputs per batch;
    each noisy batch goes forward in the memory layout the model runs on (``layout``)."""
    counts = torch.zeros(x.shape[0], n_classes, dtype=torch.int64, device=x.device)
    total = x.shape[0] * num
    for start in range(0, total, batch_size):
        owner = torch.arange(start, min(start + batch_size, total), device=x.device) // num
        xb = x[owner]
        xb = xb + sigma * torch.randn(xb.shape, generator=gen, device=x.device)
        pred = model(layout.inputs(xb)).argmax(1)
        counts.index_put_((owner, pred), torch.ones_like(pred), accumulate=True)
    return counts


def _setup(model, x, sigma, alpha, batch_size, device, seed, bounds):
    check_real("sigma", sigma, 0.0, "certify")
    if not 0 < alpha < 1:
        raise ParameterError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r}.")
    check_int("batch_size", batch_size, 1, "certify")
    check_int("seed", seed, 0, "certify")
    device = resolve_device(device)
    x = as_inputs(x, device)
    check_bounds(x, bounds)
    return x, device, torch.Generator(device=device).manual_seed(seed)


@torch.no_grad()
def certify(
    model: Any,
    x: Any,
    sigma: float,
    *,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int = 10_000,
    device: Any = "auto",
    seed: int = 0,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> CertifyResult:
    """Cohen et al.'s CERTIFY for each row of ``x``.

    Parameters
    ----------
    model : callable
        The base classifier ``f`` (logits), ideally trained with noise of scale ``sigma``;
        scored in eval mode, on ``device``, and restored.
    x : array-like of shape (N, ...)
        Inputs inside ``bounds``; the Gaussian noise itself is not clipped (as in the paper).
    sigma : float
        Noise standard deviation, in input units.
    n0, n : int, default=100, 100_000
        Noise draws per input for selecting the class and for estimating ``p_A``.
    alpha : float, default=0.001
        Failure probability of each certificate.
    batch_size : int, default=10_000
        Noisy rows per forward pass.
    device, seed, bounds
        As in :func:`scoring.evaluate`.

    References
    ----------
    J. Cohen, E. Rosenfeld, J. Z. Kolter, "Certified adversarial robustness via randomized
    smoothing", ICML 2019.

    Examples
    --------
    >>> r = certify(torch.nn.Identity(), torch.tensor([[0.9, 0.1]]), sigma=0.25, n0=100,
    ...             n=1000, device="cpu", seed=0)
    >>> r.prediction.tolist(), r.radius.round(3).tolist(), r.counts.tolist()
    ([0], [0.477], [[987, 13]])
    """
    n0, n = check_int("n0", n0, 1, "certify"), check_int("n", n, 1, "certify")
    x, device, gen = _setup(model, x, sigma, alpha, batch_size, device, seed, bounds)
    start = time.perf_counter()
    with placed(model, device), eval_mode(model), ChannelsLast(model, x, None) as layout:
        z, _ = layout.first_call(model, x[:batch_size])
        check_logits(z, min(batch_size, x.shape[0]))
        c = z.shape[1]
        counts0 = _votes(model, x, sigma, n0, batch_size, gen, c, layout).cpu().numpy()
        counts = _votes(model, x, sigma, n, batch_size, gen, c, layout).cpu().numpy()
    prediction, radius, p_lower = certify_counts(counts0, counts, sigma, alpha)
    return CertifyResult(
        prediction=prediction,
        radius=radius,
        p_lower=p_lower,
        counts=counts,
        sigma=sigma,
        n0=n0,
        n=n,
        alpha=alpha,
        forward_passes=z.shape[0] + x.shape[0] * (n0 + n),
        seconds=time.perf_counter() - start,
        device=str(device),
    )


@torch.no_grad()
def predict(
    model: Any,
    x: Any,
    sigma: float,
    *,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int = 10_000,
    device: Any = "auto",
    seed: int = 0,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> np.ndarray:
    """Cohen et al.'s PREDICT: the smoothed class of each row of ``x``, or ``ABSTAIN`` (-1).

    Returns the wrong class with probability at most ``alpha``. Parameters as in
    :func:`certify`.

    >>> predict(torch.nn.Identity(), torch.tensor([[0.9, 0.1], [0.5, 0.5]]), sigma=0.25,
    ...         n=1000, device="cpu").tolist()
    [0, -1]
    """
    n = check_int("n", n, 1, "predict")
    x, device, gen = _setup(model, x, sigma, alpha, batch_size, device, seed, bounds)
    with placed(model, device), eval_mode(model), ChannelsLast(model, x, None) as layout:
        z, _ = layout.first_call(model, x[:batch_size])
        check_logits(z, min(batch_size, x.shape[0]))
        counts = _votes(model, x, sigma, n, batch_size, gen, z.shape[1], layout).cpu().numpy()
    return predict_counts(counts, alpha)
