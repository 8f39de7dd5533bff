"""Auto-PGD with the cross-entropy or DLR loss, untargeted or targeted: :func:`apgd`."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch

from scoring.attacks._batch import fp32_fooled, leave_batch, rowwise, synced
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
from scoring.exceptions import ParameterError

__all__ = ["apgd", "checkpoints"]


def checkpoints(steps: int) -> tuple[int, ...]:
    """Iterations ``w_j = ceil(p_j steps)`` at which APGD may halve its step size.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, up to 1.

    >>> checkpoints(100)
    (22, 41, 57, 70, 80, 87, 93, 99)
    """
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return tuple(sorted({math.ceil(round(pj * steps, 9)) for pj in p[1:]}))


def drops_at_once(device: torch.device) -> bool:
    """Whether fooled points leave the batch at every step: on the CPU, where looking costs
    nothing; elsewhere only at synced steps, sparing host-device synchronisations."""
    return device.type == "cpu"


def _checkpoint(s: dict, span: int, rho: float, rows: tuple[int, ...]) -> None:
    """Halve ``η`` and go back to the best iterate where progress stalled since the last mark.

    Condition 1: fewer than ``rho * span`` of the last ``span`` steps raised the loss.
    Condition 2: ``η`` was not halved at the last mark and the best loss has not improved.
    """
    reduce = (s["ups"] < rho * span) | (~s["halved"] & (s["fmax"] <= s["fmax_mark"]))
    s["eta"] = torch.where(reduce, s["eta"] / 2, s["eta"])
    back = reduce.reshape(rows)
    s["xk"] = torch.where(back, s["xmax"], s["xk"])
    s["xprev"] = torch.where(back, s["xmax"], s["xprev"])  # no momentum after a restart
    s["g"] = torch.where(back, s["gmax"], s["g"])
    s["f"] = torch.where(reduce, s["fmax"], s["f"])
    s["halved"], s["fmax_mark"], s["ups"] = reduce, s["fmax"].clone(), torch.zeros_like(s["ups"])


def _run(p: Problem, x, y, t, hit_target: bool, steps: int, loss: str, rho: float):
    """One APGD run (Croce & Hein 2020, Algorithm 1) from a random start.

    ``z = Π(x_k + η d_k)``, ``x_{k+1} = Π(x_k + α (z - x_k) + (1 - α)(x_k - x_{k-1}))`` with
    momentum ``α = 0.75`` (a plain step at k = 0). At each checkpoint a point halves ``η`` and
    restarts from its best iterate when fewer than ``rho`` of the steps since the last
    checkpoint raised the loss, or when ``η`` was not halved last time and the best loss did
    not improve. A point's first fooling iterate is kept. Fooled points leave the batch at
    once on the CPU; on an accelerator at the :func:`~scoring.attacks._batch.synced` steps, the
    only ones at which the host waits for the device.
    """
    s = {"pos": torch.arange(x.shape[0], device=x.device), "x0": x, "y": y, "t": t}
    out, ok = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    marks, last_mark, rows = checkpoints(steps), 0, (-1,) + (1,) * (x.dim() - 1)
    eager = drops_at_once(x.device)

    bf16 = p.oracle.precision == "bf16"  # then the autocast logits propose, fp32 confirms

    def grad(xk: torch.Tensor):
        return p.oracle.gradient(xk, partial(LOSSES[loss], y=s["y"], t=s["t"]), fp32=not bf16)

    def mark(z: torch.Tensor, xk: torch.Tensor) -> None:  # no host sync
        new = fooled(z, s["y"], s["t"] if hit_target else None) & ~s["hit"]
        s["adv"] = torch.where(rowwise(new, xk), xk, s["adv"])  # its first fooling iterate
        s["hit"] = s["hit"] | new

    def drop(last: bool) -> bool:  # True when no point is left
        if bf16:  # an fp32 pass of the proposed iterates alone; refuted ones move on
            idx = s["hit"].nonzero()[:, 0]
            if idx.numel():
                real = fp32_fooled(p.oracle, s["adv"], idx, s["y"], s["t"] if hit_target else None)
                s["hit"].index_fill_(0, idx[~real], False)
        return leave_batch(s, s["hit"], s["adv"], out, ok, last=last, at_once=eager)

    xk = random_start(x, p.eps, p.norm, p.bounds, p.generator)
    f, g, z = grad(xk)
    s.update(
        xk=xk,
        xprev=xk,
        f=f,
        g=g,
        fmax=f,
        xmax=xk,
        gmax=g,
        fmax_mark=f,
        eta=torch.full_like(f, 2 * p.eps),
        ups=torch.zeros_like(f),
        halved=torch.zeros_like(f, dtype=torch.bool),
        adv=xk,
        hit=torch.zeros_like(f, dtype=torch.bool),
    )
    mark(z, xk)
    if eager and drop(last=False):
        return out, ok
    for k in range(steps):
        zk = s["xk"] + s["eta"].reshape(rows) * ascent_direction(s["g"], p.norm)
        zk = project(zk, s["x0"], p.eps, p.norm, p.bounds)
        if k > 0:
            zk = s["xk"] + 0.75 * (zk - s["xk"]) + 0.25 * (s["xk"] - s["xprev"])
            zk = project(zk, s["x0"], p.eps, p.norm, p.bounds)
        s["xprev"], s["xk"] = s["xk"], zk
        if k == steps - 1:
            mark(p.oracle.logits(zk), zk)
            break
        f, s["g"], z = grad(zk)
        s["ups"], s["f"] = s["ups"] + (f > s["f"]), f
        better = f > s["fmax"]
        s["fmax"] = torch.where(better, f, s["fmax"])
        s["xmax"] = torch.where(better.reshape(rows), zk, s["xmax"])
        s["gmax"] = torch.where(better.reshape(rows), s["g"], s["gmax"])
        mark(z, zk)
        if k + 1 in marks:
            _checkpoint(s, k + 1 - last_mark, rho, rows)
            last_mark = k + 1
        if (eager or synced(k + 1)) and drop(last=False):
            return out, ok
    drop(last=True)
    return out, ok


def _core(p: Problem, x, y, t, *, steps, loss, restarts, n_target_classes, rho):
    out, ok = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    targeted = bool(n_target_classes) or t is not None
    if loss == "dlr" and p.n_classes < (4 if targeted else 3):
        loss = "ce"
        p.oracle.warnings.append(
            f"apgd: the {'targeted ' if targeted else ''}DLR loss needs at least "
            f"{4 if targeted else 3} classes and the model has {p.n_classes}; used cross-entropy"
        )
    jobs: list[tuple[torch.Tensor | None, bool]] = [(t, t is not None)]
    if n_target_classes:  # the k most likely wrong classes, one after another
        ranked = p.oracle.logits(x).scatter(1, y[:, None], -torch.inf).argsort(1, descending=True)
        jobs = [(ranked[:, j], False) for j in range(min(n_target_classes, p.n_classes - 1))]
    for target, hit_target in jobs:
        for _ in range(restarts):
            idx = (~ok).nonzero()[:, 0]
            if not idx.numel():
                return out, ok, None
            sub_t = None if target is None else target[idx]
            xa, hit = _run(p, x[idx], y[idx], sub_t, hit_target, steps, loss, rho)
            out[idx[hit]], ok[idx[hit]] = xa[hit], True
    return out, ok, None


def apgd(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    loss: str = "ce",
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int = 0,
    rho: float = 0.75,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    target: Any = None,
    device: Any = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    seed: int = 0,
) -> AttackResult:
    """Auto-PGD (Croce & Hein 2020): step-size-free PGD with momentum, L∞ or L2.

    The step size starts at ``η = 2 eps`` and is halved at the checkpoints of
    :func:`checkpoints` when progress stalls; the best iterate is kept per point. ``loss="ce"``
    maximises the cross-entropy (APGD-CE); ``loss="dlr"`` the difference of logits ratio
    ``-(z_y - max_{j≠y} z_j) / (z_π1 - z_π3)``, invariant to shifts and rescaling of the logits
    (APGD-DLR). With ``n_target_classes = k`` the attack runs targeted, towards each of the
    ``k`` most likely wrong classes in turn (APGD-T; targeted DLR
    ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)``), and counts any misclassification.

    Parameters
    ----------
    model, x, y, bounds, device, precision, channels_last, seed
        As in :func:`scoring.attacks.pgd`.
    eps : float
    norm : {"linf", "l2"}, default="linf"
    loss : {"ce", "dlr"}, default="ce"
        DLR needs at least 3 classes (4 when targeted); with fewer the attack uses the
        cross-entropy and says so in ``warnings``.
    steps : int, default=100
        Iterations per run: ``steps`` forward-backward passes and one forward per point.
    restarts : int, default=1
        Runs from new random starts, on the points still robust (per target class).
    n_target_classes : int, default=0
        0 for an untargeted attack; ``k > 0`` for APGD-T over the top-``k`` wrong classes.
    rho : float, default=0.75
        Fraction of loss-increasing steps below which the step size is halved.
    target : Tensor of shape (N,), optional
        Explicit targets; success then means reaching them.

    References
    ----------
    F. Croce, M. Hein, "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks", ICML 2020.

    Examples
    --------
    >>> model = torch.nn.Identity()  # logits are the inputs
    >>> x, y = torch.tensor([[0.6, 0.4, 0.1], [0.2, 0.9, 0.0]]), torch.tensor([0, 1])
    >>> r = apgd(model, x, y, eps=0.15, loss="dlr", steps=20)
    >>> r.success, bool((r.norms <= 0.15 + 1e-6).all())
    (tensor([ True, False]), True)
    """
    check_norm(norm, NORMS, "apgd")
    eps = check_real("eps", eps, 0.0, "apgd", open_low=False)
    if loss not in LOSSES:
        raise ParameterError(f"The 'loss' parameter of apgd must be 'ce' or 'dlr'. Got {loss!r}.")
    if n_target_classes and target is not None:
        raise ParameterError("Pass either target or n_target_classes to apgd, not both.")
    core = partial(
        _core,
        steps=check_int("steps", steps, 1, "apgd"),
        loss=loss,
        rho=check_real("rho", rho, 0, "apgd"),
        restarts=check_int("restarts", restarts, 1, "apgd"),
        n_target_classes=check_int("n_target_classes", n_target_classes, 0, "apgd"),
    )
    return run_attack(
        "apgd",
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
        channels_last=channels_last,
        seed=seed,
    )
