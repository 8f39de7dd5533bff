"""Square attack, score-based black-box L∞ random search: :func:`square`."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from scoring.attacks._ops import clip, fooled, margin
from scoring.attacks.base import (
    AttackResult,
    Problem,
    check_int,
    check_norm,
    check_real,
    run_attack,
)

__all__ = ["p_schedule", "square"]

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, i: int, n_queries: int) -> float:
    """Fraction of the input changed at iteration ``i``: the paper's piecewise-constant rule.

    ``p_init`` is halved after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
    of a 10,000-query budget, rescaled to ``n_queries``.

    >>> [p_schedule(0.8, i, 10_000) for i in (10, 11, 51, 9000)]
    [0.8, 0.4, 0.2, 0.0015625]
    """
    it = int(i / n_queries * 10_000)
    return p_init / 2 ** sum(it > h for h in _HALVINGS)


def _loss(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """Loss to minimise: the margin ``z_y - max_{j≠y} z_j``, or the cross-entropy to ``t``."""
    return margin(z, y) if t is None else F.cross_entropy(z, t, reduction="none")


def _window(frac: float, h: int, w: int) -> tuple[int, int]:
    if h == 1:  # feature vectors: a run of round(p d) features
        return 1, min(max(round(frac * w), 1), w)
    s = max(min(round(math.sqrt(frac * h * w)), h - 1, w - 1), 1)
    return s, s


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """View inputs as (N, C, H, W): (N, d) as one row of d, (N, H, W) as one channel."""
    if x.dim() == 2:
        return x[:, None, None, :]
    return x[:, None] if x.dim() == 3 else x.reshape(x.shape[0], -1, *x.shape[-2:])


def _proposal(p: Problem, xi, xb, frac):
    """Replace one random window of the current perturbation by ``±eps`` (a sign per
    channel); redraw, up to 10 times, proposals that would not change the point."""
    m, c, h, w = xi.shape
    sh, sw = _window(frac, h, w)
    dev, gen = xi.device, p.generator
    x_new, todo = xb.clone(), torch.arange(m, device=dev)
    for _ in range(10):
        k = todo.numel()
        r = torch.randint(0, h - sh + 1, (k, 1), generator=gen, device=dev)
        q = torch.randint(0, w - sw + 1, (k, 1), generator=gen, device=dev)
        rows, cols = torch.arange(h, device=dev) - r, torch.arange(w, device=dev) - q
        in_rows, in_cols = (rows >= 0) & (rows < sh), (cols >= 0) & (cols < sw)
        mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        signs = torch.randint(0, 2, (k, c, 1, 1), generator=gen, device=dev) * 2.0 - 1
        delta = torch.where(mask, p.eps * signs, xb[todo] - xi[todo])
        x_new[todo] = clip(xi[todo] + delta, p.bounds)
        todo = todo[(x_new[todo] - xb[todo]).flatten(1).abs().amax(1) < 1e-7]
        if not todo.numel():
            break
    return x_new


def _core(p: Problem, x, y, t, *, n_queries, p_init):
    xi = _as_images(x)
    n, c, _, w = xi.shape
    stripes = torch.randint(0, 2, (n, c, 1, w), generator=p.generator, device=x.device) * 2 - 1
    xb = clip(xi + p.eps * stripes, p.bounds)  # vertical stripes of ±eps
    z = p.oracle.logits(xb.reshape(x.shape))
    best, ok = _loss(z, y, t), fooled(z, y, t)
    queries = torch.ones(n, dtype=torch.int64, device=x.device)
    for i in range(1, n_queries):
        act = (~ok).nonzero()[:, 0]
        if not act.numel():
            break
        t_act = None if t is None else t[act]
        x_new = _proposal(p, xi[act], xb[act], p_schedule(p_init, i, n_queries))
        z = p.oracle.logits(x_new.reshape((-1, *x.shape[1:])))
        queries[act] += 1
        loss, hit = _loss(z, y[act], t_act), fooled(z, y[act], t_act)
        keep = (loss < best[act]) | hit
        idx = act[keep]
        xb[idx], best[idx], ok[idx] = x_new[keep], loss[keep], hit[keep]
    return xb.reshape(x.shape), ok, queries


def square(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    n_queries: int = 5000,
    p_init: float = 0.8,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    target: Any = None,
    device: Any = None,
    precision: str = "fp32",
    seed: int = 0,
) -> AttackResult:
    """Square attack (Andriushchenko et al. 2020): random search on the L∞ sphere's vertices.

    Uses only the model's outputs. Starts from vertical stripes of ``±eps``; each query
    redraws one random square window (side ``√(p h w)``, a run of ``p d`` features for vector
    inputs) of the perturbation as ``±eps`` per channel, and keeps the proposal when it lowers
    the margin loss ``z_y - max_{j≠y} z_j`` (cross-entropy to the target for a targeted run);
    ``p`` follows :func:`p_schedule`. A point stops being queried once fooled.

    Parameters
    ----------
    model, x, y, bounds, target, device, seed
        As in :func:`scoring.attacks.pgd`. Inputs of shape (N, C, H, W), (N, H, W) or (N, d).
    eps : float
    norm : {"linf"}
    n_queries : int, default=5000
        Query budget per point, the initial query included.
    p_init : float, default=0.8
        Initial fraction of the input changed per query (AutoAttack's value for its standard
        evaluation).
    precision : {"fp32", "bf16"}
        Accepted for a uniform signature; queries always run in fp32, without gradients.

    Returns
    -------
    AttackResult
        ``queries`` holds the queries spent on each point (0 for points misclassified
        from the start).

    References
    ----------
    M. Andriushchenko, F. Croce, N. Flammarion, M. Hein, "Square Attack: a query-efficient
    black-box adversarial attack via random search", ECCV 2020.

    Examples
    --------
    >>> x, y = torch.tensor([[0.6, 0.4, 0.3], [0.1, 0.9, 0.0]]), torch.tensor([0, 1])
    >>> r = square(torch.nn.Identity(), x, y, eps=0.15, n_queries=50, seed=0)
    >>> r.success, r.queries, r.backward_passes
    (tensor([ True, False]), tensor([ 1, 50]), 0)
    """
    check_norm(norm, ("linf",), "square")
    core = partial(
        _core,
        n_queries=check_int("n_queries", n_queries, 1, "square"),
        p_init=check_real("p_init", p_init, 0.0, "square"),
    )
    return run_attack(
        "square",
        core,
        model,
        x,
        y,
        eps=check_real("eps", eps, 0.0, "square", open_low=False),
        norm=norm,
        bounds=bounds,
        target=target,
        device=device,
        precision=precision,
        seed=seed,
        counts_queries=True,
    )
