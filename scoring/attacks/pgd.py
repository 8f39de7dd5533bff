"""Projected gradient descent with random restarts: :func:`pgd`."""

from __future__ import annotations

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

__all__ = ["pgd"]


def _step(p: Problem, s: dict, grad: torch.Tensor, alpha: float) -> torch.Tensor:
    """``Π(x_k + α d_k)`` for the live points; the others stay exactly where they are."""
    xa, live = s["xa"], rowwise(s["live"], s["xa"])
    if p.norm == "linf":  # Π is a clamp to [max(x - eps, low), min(x + eps, high)]
        d = grad.sign_().nan_to_num_(0.0)  # a NaN gradient moves nothing
        return xa.addcmul_(d, live, value=alpha).clamp_(s["lo"], s["hi"])
    moved = project(xa + alpha * ascent_direction(grad, "l2"), s["x0"], p.eps, "l2", p.bounds)
    return torch.where(live == 0, xa, moved)


def _box(p: Problem, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """For L∞, the bounds of the ball around ``x`` within the input range."""
    if p.norm != "linf":
        return None, None
    lo, hi = x - p.eps, x + p.eps
    if p.bounds is not None:
        lo.clamp_(min=p.bounds[0])
        hi.clamp_(max=p.bounds[1])
    return lo, hi


def _restart(p: Problem, x, y, t, steps: int, step_size: float):
    """One run from a random start. A point stops moving at its first fooling iterate (told
    by the logits of the gradient pass) and leaves the batch at a later :func:`synced` step;
    between those steps the host never waits for the device. Under bf16 the gradient pass's
    logits only propose: see :func:`_confirm`."""
    out, ok = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    bf16 = p.oracle.precision == "bf16"
    s = {  # the points left: their place in x, iterate, 1 until fooled then 0, labels
        "pos": torch.arange(x.shape[0], device=x.device),
        "xa": random_start(x, p.eps, p.norm, p.bounds, p.generator),
        "live": torch.ones(x.shape[0], device=x.device),
        "y": y,
        "t": t,
        "x0": None if p.norm == "linf" else x,  # L2 projects around x0, L∞ clamps to a box
    }
    s["lo"], s["hi"] = _box(p, x)
    if bf16:  # the first iterate each point's autocast logits call fooled, to confirm
        s["proposed"], s["has"] = s["xa"].clone(), torch.zeros_like(ok)
    for k in range(steps + 1):
        if k < steps:
            loss = partial(LOSSES["ce"], y=s["y"], t=s["t"], reduction="sum")
            _, grad, z = p.oracle.gradient(s["xa"], loss, fp32=not bf16)
        else:
            z = p.oracle.logits(s["xa"])
        hit = fooled(z, s["y"], s["t"])
        if bf16 and k < steps:
            new = hit & ~s["has"]
            s["proposed"] = torch.where(rowwise(new, x), s["xa"], s["proposed"])
            s["has"] |= new
        else:
            s["live"].masked_fill_(hit, 0.0)
        if k < steps:
            s["xa"] = _step(p, s, grad, step_size)
        if k == steps or synced(k):
            if bf16:
                _confirm(p, s)
            if leave_batch(s, s["live"] == 0, s["xa"], out, ok, last=k == steps):
                break
    return out, ok


def _confirm(p: Problem, s: dict) -> None:
    """Under bf16, check in fp32 the iterates that the autocast logits called fooled: a
    confirmed one becomes the point's iterate and the point stops; a refuted one is
    forgotten, the point having moved on meanwhile. Only the proposals pay the fp32 pass."""
    pending = (s["has"] & (s["live"] == 1)).nonzero()[:, 0]
    if not pending.numel():
        return
    real = fp32_fooled(p.oracle, s["proposed"], pending, s["y"], s["t"])
    good = pending[real]
    s["xa"].index_copy_(0, good, s["proposed"].index_select(0, good))
    s["live"].index_fill_(0, good, 0.0)
    s["has"].index_fill_(0, pending[~real], False)


def _rows(idx: torch.Tensor, *tensors):
    """The rows ``idx`` of each tensor (None stays None)."""
    return [None if v is None else v.index_select(0, idx) for v in tensors]


def _core(p: Problem, x, y, t, *, steps: int, step_size: float, restarts: int):
    out, ok = _restart(p, x, y, t, steps, step_size)
    for _ in range(restarts - 1):  # each on the points still robust
        idx = (~ok).nonzero()[:, 0]
        if not idx.numel():
            break
        xa, hit = _restart(p, *_rows(idx, x, y, t), steps, step_size)
        out.index_copy_(0, idx, xa)  # x itself where not hit
        ok.index_copy_(0, idx, hit)
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
    channels_last: bool | None = None,
    seed: int = 0,
) -> AttackResult:
    """Projected gradient ascent on the cross-entropy (Madry et al. 2018), L∞ or L2.

    From a uniform random start in the ball, ``x_{k+1} = Π(x_k + α d_k)`` with
    ``d_k = sign(∇ CE)`` (L∞) or ``∇ CE / ||∇ CE||_2`` (L2), ``Π`` the projection onto the
    ``eps`` ball followed by clipping to ``bounds``, and ``α = 2.5 eps / steps`` by default.
    A point counts as broken at the first iterate that fools the model (read from the logits
    of the gradient pass, no extra forward), which is kept: the point stops moving and leaves
    the batch at a later :func:`synced` step. Each restart attacks only the points still
    robust, so with the same seed more restarts, or more steps at a fixed ``step_size``, are
    never weaker. Under ``precision="bf16"`` the autocast logits only propose an iterate;
    it counts once an fp32 forward pass of it, run at the next synced step on the proposals
    alone, agrees (the point moves on meanwhile), so no step pays a full fp32 pass.

    Parameters
    ----------
    model, x, y, bounds, target, device, precision, channels_last
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
    (tensor([ True, False]), True, 37)
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
        channels_last=channels_last,
        seed=seed,
    )
