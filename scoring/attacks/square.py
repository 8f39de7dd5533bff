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


def _starts(n: int, side: int, device) -> torch.Tensor:
    """Row ``r`` is 1 on the cells ``r .. r + side - 1`` of a line of ``n``: (n - side + 1, n)."""
    cells = torch.arange(n, device=device)
    first = torch.arange(n - side + 1, device=device)[:, None]
    return ((cells >= first) & (cells < first + side)).float()


def _codes(c: int, device) -> torch.Tensor:
    """The nonzero subsets of (the first 16 of) ``c`` channels, one per row, as bools."""
    k = min(c, 16)  # beyond, a proposal leaves a point unchanged with odds 2^-c anyway
    codes = torch.zeros((2**k - 1, c), dtype=torch.bool, device=device)
    bits = torch.arange(k, device=device)
    codes[:, :k] = (torch.arange(1, 2**k, device=device)[:, None] >> bits) & 1
    return codes


def _draw(p: Problem, table: torch.Tensor, m: int) -> torch.Tensor:
    """``m`` rows of ``table`` drawn uniformly with the attack's generator."""
    idx = torch.randint(0, table.shape[0], (m,), generator=p.generator, device=table.device)
    return table.index_select(0, idx)


def _proposal(p: Problem, u: torch.Tensor, lines, codes) -> torch.Tensor:
    """The change ``d`` to the perturbation signs ``u`` (1 for +eps, 0 for -eps): per point,
    a random window set to a random sign per channel.

    A proposal that would leave a point unchanged (its window already holds those signs)
    gets, instead, a uniformly drawn other sign vector, as the paper's rejection loop would.
    """
    m, c, h, w = u.shape
    window = _draw(p, lines[0], m).view(m, 1, h, 1) * _draw(p, lines[1], m).view(m, 1, 1, w)
    signs = torch.randint(0, 2, (m, c, 1, 1), generator=p.generator, device=u.device, dtype=u.dtype)
    d = (signs - u).mul_(window)
    same = d.flatten(1).abs().amax(1) == 0
    flip = (_draw(p, codes, m) & same.unsqueeze(1)).view(m, c, 1, 1)
    return d.addcmul_(window, (1 - 2 * signs) * flip)


def _retire(s: dict, hit: torch.Tensor, out, ok, queries, spent: int) -> bool:
    """Record the points just broken and drop them from the state; True when none is left."""
    idx = hit.nonzero()[:, 0]
    pos = s["pos"].index_select(0, idx)
    sub = {k: s[k].index_select(0, idx) for k in ("u", "top", "bot")}
    out.index_copy_(0, pos, torch.lerp(sub["bot"], sub["top"], sub["u"]))
    ok.index_fill_(0, pos, True)
    queries.index_fill_(0, pos, spent)
    keep = (~hit).nonzero()[:, 0]
    for k, v in s.items():
        s[k] = None if v is None else v.index_select(0, keep)
    return not keep.numel()


def _core(p: Problem, x, y, t, *, n_queries, p_init):
    xi = _as_images(x)
    n, c, h, w = xi.shape
    gen, dev = p.generator, x.device
    stripes = torch.randint(0, 2, (n, c, 1, w), generator=gen, device=dev, dtype=x.dtype)
    s = {  # the points still robust: signs of their perturbation, its two values, labels
        "pos": torch.arange(n, device=dev),
        "u": stripes.expand(n, c, h, w).contiguous(),  # vertical stripes of ±eps
        "top": clip(xi + p.eps, p.bounds),
        "bot": clip(xi - p.eps, p.bounds),
        "y": y,
        "t": t,
    }
    out, ok = xi.clone(), torch.zeros(n, dtype=torch.bool, device=dev)
    queries = torch.full((n,), n_queries, dtype=torch.int64, device=dev)
    z = p.oracle.logits(torch.lerp(s["bot"], s["top"], s["u"]).reshape(x.shape))
    s["best"], hit = _loss(z, y, t), fooled(z, y, t)
    codes, size, lines = _codes(c, dev), None, None
    for i in range(1, n_queries + 1):  # i queries spent on each point left
        if bool(hit.any()) and _retire(s, hit, out, ok, queries, i):
            break
        if i == n_queries:
            break
        if size != (new := _window(p_schedule(p_init, i, n_queries), h, w)):
            size, lines = new, (_starts(h, new[0], dev), _starts(w, new[1], dev))
        d = _proposal(p, s["u"], lines, codes)
        # lerp is exact at weights 0 and 1: the values stay within the ball and the bounds
        z = p.oracle.logits(torch.lerp(s["bot"], s["top"], s["u"] + d).reshape(-1, *x.shape[1:]))
        loss, hit = _loss(z, s["y"], s["t"]), fooled(z, s["y"], s["t"])
        s["u"].addcmul_(d, ((loss < s["best"]) | hit).to(d.dtype).view(-1, 1, 1, 1))
        s["best"] = torch.minimum(s["best"], loss)
    if s["pos"].numel():
        out.index_copy_(0, s["pos"], torch.lerp(s["bot"], s["top"], s["u"]))
    return out.reshape(x.shape), ok, queries


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
    channels_last: bool | None = None,
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
    model, x, y, bounds, target, device, channels_last, seed
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
        channels_last=channels_last,
        seed=seed,
        counts_queries=True,
    )
