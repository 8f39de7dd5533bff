"""Running one attack along an eps grid in batches: what :func:`scoring.evaluate` repeats.

A bounded attack at each eps runs only on the points still robust at the previous eps: an
adversarial input inside a ball is inside every larger one, so each curve is monotone and no
point is attacked again once broken. A minimal-perturbation attack (C&W) runs once and is
thresholded at every eps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from scoring.attacks.registry import ATTACKS, run_named
from scoring.report import AttackScore
from scoring.stats import wilson_interval

__all__ = ["Run", "attack_in_batches", "score", "sweep"]


def _seed(*parts: int) -> int:
    """A 32-bit seed derived from ``parts`` (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


@dataclass(frozen=True)
class Run:
    """Per-point success and norms of one attack over all batches, and the summed cost."""

    success: torch.Tensor
    norms: torch.Tensor
    seconds: float = 0.0
    fwd: int = 0
    bwd: int = 0
    warnings: tuple[str, ...] = ()


def attack_in_batches(name, net, x, y, *, eps, norm, seeds, batch_size, kw, progress=None) -> Run:
    """Run attack ``name`` on ``batch_size`` points at a time, batch ``b`` seeded by
    ``(*seeds, b)``; ``progress(name, eps, done, total)`` is called after each batch."""
    start, results, total = time.perf_counter(), [], x.shape[0]
    for b, lo in enumerate(range(0, total, batch_size)):
        sl, seed = slice(lo, lo + batch_size), _seed(*seeds, b)
        results.append(run_named(name, net, x[sl], y[sl], norm=norm, eps=eps, seed=seed, **kw))
        if progress is not None:
            progress(name, eps, min(lo + batch_size, total), total)
    if not results:
        return Run(torch.zeros(0, dtype=torch.bool, device=x.device), x.new_zeros(0))
    return Run(
        torch.cat([r.success for r in results]),
        torch.cat([r.norms for r in results]),
        time.perf_counter() - start,
        sum(r.forward_passes for r in results),
        sum(r.backward_passes for r in results),
        sum((r.warnings for r in results), ()),
    )


def sweep(
    name, net, x, y, correct, grid, *, norm, seeds, batch_size, kw: dict[str, Any], progress=None
):
    """``([(eps, robust mask, cost), ...], median minimal L2 norm or None)`` for one attack.

    The median is that of C&W's minimal norms over the correctly classified points (inf for
    points it failed on), None for bounded attacks. C&W's whole cost is booked on the
    smallest eps.
    """
    robust, points = correct.clone(), []
    if not ATTACKS[name].minimal:
        for e_i, e in enumerate(grid):
            idx = robust.nonzero()[:, 0]
            run = attack_in_batches(
                name,
                net,
                x[idx],
                y[idx],
                eps=e,
                norm=norm,
                seeds=(*seeds, e_i),
                batch_size=batch_size,
                kw=kw,
                progress=progress,
            )
            robust[idx[run.success]] = False
            points.append((e, robust.clone(), run))
        return points, None
    idx = correct.nonzero()[:, 0]
    run = attack_in_batches(
        name,
        net,
        x[idx],
        y[idx],
        eps=None,
        norm=norm,
        seeds=seeds,
        batch_size=batch_size,
        kw=kw,
        progress=progress,
    )
    minimal = torch.where(run.success, run.norms, torch.inf)
    for e_i, e in enumerate(grid):
        robust[idx] = minimal > e
        points.append((e, robust.clone(), run if e_i == 0 else Run(run.success[:0], minimal[:0])))
    return points, float(np.median(minimal.cpu().numpy())) if idx.numel() else None


def score(name: str, norm: str, eps: float, robust, correct, run: Run) -> AttackScore:
    """The :class:`AttackScore` of a robust mask: accuracy, Wilson interval, success rate."""
    n, k, c = robust.numel(), int(robust.sum()), int(correct.sum())
    return AttackScore(
        attack=name,
        norm=norm,
        eps=eps,
        robust_accuracy=k / n,
        ci95=wilson_interval(k, n),
        attack_success_rate=(c - k) / c if c else None,
        n_robust=k,
        n_correct=c,
        seconds=run.seconds,
        forward_passes=run.fwd,
        backward_passes=run.bwd,
    )
