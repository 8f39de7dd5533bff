"""Projected gradient descent with random restarts: :func:`pgd`."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from scoring.attacks._ops import LOSSES, ascent_direction, fooled, project, random_start
from scoring.attacks.base import (
    NORMS,
    AttackResult,
    Problem,
    check_int,
    check_norm,
    check_real,
    run_attack,
)

__all__ = ["pgd"]


def _restart(p: Problem, x, y, t, steps: int, step_size: float):
    """One run from a random start; a point leaves the batch at its first fooling iterate."""
    out, ok = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    pos, x0 = torch.arange(x.shape[0], device=x.device), x
    xa = random_start(x, p.eps, p.norm, p.bounds, p.generator)
    for k in range(steps + 1):
        if k < steps:
            _, grad, z = p.oracle.gradient(xa, partial(LOSSES["ce"], y=y, t=t))
        else:
            z = p.oracle.logits(xa)
        hit = fooled(z, y, t)
        if bool(hit.any()):
            out[pos[hit]], ok[pos[hit]] = xa[hit], True
            keep = ~hit
            pos, x0, xa, y = pos[keep], x0[keep], xa[keep], y[keep]
            t = None if t is None else t[keep]
            if k == steps or not pos.numel():
                break
            grad = grad[keep]
        if k < steps:
            xa = project(
                xa + step_size * ascent_direction(grad, p.norm), x0, p.eps, p.norm, p.bounds
            )
    return out, ok


def _core(p: Problem, x, y, t, *, steps: int, step_size: float, restarts: int):
    out, ok = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(restarts):
        idx = (~ok).nonzero()[:, 0]
        if not idx.numel():
            break
        xa, hit = _restart(p, x[idx], y[idx], None if t is None else t[idx], steps, step_size)
        out[idx[hit]], ok[idx[hit]] = xa[hit], True
    return out, ok, None


def pgd(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    restarts: int = 1,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    target: Any = None,
    device: Any = None,
    precision: str = "fp32",
    seed: int = 0,
) -> AttackResult:
    """Projected gradient ascent on the cross-entropy (Madry et al. 2018), L∞ or L2.

    From a uniform random start in the ball, ``x_{k+1} = Π(x_k + α d_k)`` with
    ``d_k = sign(∇ CE)`` (L∞) or ``∇ CE / ||∇ CE||_2`` (L2), ``Π`` the projection onto the
    ``eps`` ball followed by clipping to ``bounds``, and ``α = 2.5 eps / steps`` by default.
    A point counts as broken at the first iterate that fools the model, which is kept and the
    point dropped from the batch. Each restart attacks only the points still robust, so with
    the same seed more restarts, or more steps at a fixed ``step_size``, are never weaker.

    Parameters
    ----------
    model, x, y, bounds, target, device, precision
        As in :func:`scoring.attacks.fgsm`.
    eps : float
        Radius of the ball, in input units.
    norm : {"linf", "l2"}, default="linf"
    steps : int, default=10
        Gradient steps per restart (one forward-backward pass each, plus a final forward).
    step_size : float, optional
        ``α``; ``2.5 * eps / steps`` when omitted.
    restarts : int, default=1
        Random starts; later ones attack only the points still robust.
    seed : int, default=0
        Seeds the private generator of the random starts.

    Returns
    -------
    AttackResult

    References
    ----------
    A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu, "Towards deep learning models
    resistant to adversarial attacks", ICLR 2018.

    Examples
    --------
    Logits equal to inputs: the first point lies 0.2 / √2 ≈ 0.141 (L2) from the boundary.

    >>> model = torch.nn.Identity()
    >>> x, y = torch.tensor([[0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1])
    >>> r = pgd(model, x, y, eps=0.15, norm="l2", steps=20, seed=0)
    >>> r.success, bool((r.norms <= 0.15 + 1e-6).all()), r.backward_passes
    (tensor([ True, False]), True, 35)
    """
    check_norm(norm, NORMS, "pgd")
    eps = check_real("eps", eps, 0.0, "pgd", open_low=False)
    steps = check_int("steps", steps, 1, "pgd")
    restarts = check_int("restarts", restarts, 1, "pgd")
    alpha = 2.5 * eps / steps if step_size is None else check_real("step_size", step_size, 0, "pgd")
    core = partial(_core, steps=steps, step_size=alpha, restarts=restarts)
    return run_attack(
        "pgd",
        core,
        model,
        x,
        y,
        eps=eps,
        norm=norm,
        bounds=bounds,
        target=target,
        device=device,
        precision=precision,
        seed=seed,
    )
