"""How iterative attacks shrink their batch as points break, with few host-device syncs.

An attack keeps its per-point state in a dict of tensors (first dimension: the points still in
the batch, ``"pos"`` their place in the input). A point that breaks is recorded on the device
at once, but leaves the batch only when the host looks: at the :func:`synced` iterates on an
accelerator, where each look is a synchronisation. Under bf16 the autocast logits only
propose a broken point; :func:`fp32_fooled` confirms it.
"""

from __future__ import annotations

import torch

from scoring.attacks._ops import fooled

__all__ = ["fp32_fooled", "leave_batch", "rowwise", "synced"]


def synced(k: int) -> bool:
    """Whether the host looks at the batch after iterate ``k``: 1, 2, 4, 8, then every 8th.

    Points are broken mostly in the first steps, so early looks drop them from the batch
    soon; spacing the later ones keeps host-device synchronisations to a handful per run.

    >>> [k for k in range(1, 41) if synced(k)]
    [1, 2, 4, 8, 16, 24, 32, 40]
    """
    return k > 0 and (k & (k - 1) == 0 or k % 8 == 0)


def rowwise(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` of shape (N,) shaped to broadcast over the rows of ``like`` (N, ...)."""
    return mask.reshape((-1,) + (1,) * (like.dim() - 1))


def leave_batch(
    s: dict,
    done: torch.Tensor,
    adv: torch.Tensor,
    out: torch.Tensor,
    ok: torch.Tensor,
    *,
    last: bool,
    at_once: bool = False,
) -> bool:
    """Record the points ``done`` (their adversarial iterate in ``adv``) in ``out`` and ``ok``,
    and drop them from every tensor of ``s``, once they are at least an eighth of the batch
    (at once with ``at_once``, or at the ``last`` step). True when the run is over.

    >>> s = {"pos": torch.arange(3), "x": torch.tensor([[1.0], [2.0], [3.0]])}
    >>> out, ok = torch.zeros(3, 1), torch.zeros(3, dtype=torch.bool)
    >>> leave_batch(s, torch.tensor([False, True, False]), s["x"], out, ok, last=False)
    False
    >>> ok.tolist(), out[:, 0].tolist(), s["pos"].tolist()
    ([False, True, False], [0.0, 2.0, 0.0], [0, 2])
    """
    hit = done.nonzero()[:, 0]  # the host waits for the device here only
    if not (last or at_once) and hit.numel() * 8 < done.numel():
        return False  # too few to be worth shrinking the batch for: they stay put
    if hit.numel():
        pos = s["pos"].index_select(0, hit)
        out.index_copy_(0, pos, adv.index_select(0, hit))
        ok.index_fill_(0, pos, True)
    if last or hit.numel() == done.numel():
        return True
    keep = (~done).nonzero()[:, 0]
    for k, v in s.items():
        s[k] = None if v is None else v.index_select(0, keep)
    return False


def fp32_fooled(oracle, x: torch.Tensor, idx: torch.Tensor, y, t) -> torch.Tensor:
    """Whether the rows ``idx`` of ``x`` fool the model in an fp32 forward pass (labels ``y``,
    targets ``t`` or None, indexed alike)."""
    target = None if t is None else t.index_select(0, idx)
    return fooled(oracle.logits(x.index_select(0, idx)), y.index_select(0, idx), target)
