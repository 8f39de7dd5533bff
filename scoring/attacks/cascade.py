"""The standard cascade, APGD-CE → APGD-T → Square, each on the points still robust."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from scoring.attacks._ops import lp_norm
from scoring.attacks.base import AttackResult, check_int
from scoring.exceptions import ParameterError
from scoring.inputs import as_inputs, resolve_device

__all__ = ["STANDARD", "cascade"]

STANDARD = ("apgd-ce", "apgd-t", "square")


def _stages(attacks: Sequence[str], norm: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stages that support ``norm``, and a warning for each one dropped."""
    from scoring.attacks.registry import ATTACKS, get_attack  # the registry imports us

    if isinstance(attacks, str) or not attacks or "cascade" in attacks:
        raise ParameterError(f"cascade needs a list of attack names; got {attacks!r}.")
    kept, dropped = [], []
    for a in attacks:
        if a in STANDARD and norm not in ATTACKS[a].norms:
            dropped.append(f"cascade: {a!r} does not support norm {norm!r}; skipped")
        else:
            get_attack(a, norm)  # raises the precise error for an unknown name or norm
            kept.append(a)
    return tuple(kept), tuple(dropped)


def cascade(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    attacks: Sequence[str] = STANDARD,
    steps: int | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    device: Any = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    seed: int = 0,
) -> AttackResult:
    """Run ``attacks`` in turn, each only on the points every earlier one failed to break.

    The result is the per-point worst case: a point is broken if any stage breaks it, and
    its adversarial input is the first one found. With the default stages this is the
    standard AutoAttack evaluation (Croce & Hein 2020): APGD-CE, APGD-T (targeted DLR over
    the 9 most likely wrong classes) and the Square attack (5,000 queries); stages that do
    not support ``norm`` (Square for L2) are skipped with a warning.

    Parameters
    ----------
    model, x, y, bounds, device, precision, channels_last
        As in :func:`scoring.attacks.pgd`.
    eps : float
    norm : {"linf", "l2"}, default="linf"
    attacks : sequence of str, default=("apgd-ce", "apgd-t", "square")
        Attack names from :data:`scoring.attacks.ATTACKS`, in order.
    steps : int, optional
        Iterations of every iterative stage; each stage's default when omitted.
    options : mapping of attack name to keyword arguments, optional
        E.g. ``{"square": {"n_queries": 1000}}``.
    seed : int, default=0
        Stage ``i`` is seeded with ``seed + i``.

    Returns
    -------
    AttackResult
        Costs and queries are summed over the stages; ``attack`` is ``"cascade"``.

    Examples
    --------
    >>> x = torch.tensor([[0.6, 0.4, 0.1, 0.0], [0.5, 0.45, 0.0, 0.0]])
    >>> y = torch.tensor([0, 0])
    >>> r = cascade(torch.nn.Identity(), x, y, eps=0.1, steps=10,
    ...             options={"square": {"n_queries": 20}})
    >>> r.success, r.attack
    (tensor([False,  True]), 'cascade')
    """
    from scoring.attacks.registry import run_named

    stages, warnings = _stages(attacks, norm)
    options = dict(options or {})
    if unknown := set(options) - set(attacks):
        raise ParameterError(f"cascade options name attacks it does not run: {sorted(unknown)}.")
    check_int("seed", seed, 0, "cascade")
    start, device = time.perf_counter(), resolve_device(device, model)
    x = as_inputs(x, device)
    fwd = 0
    if y is None:  # the model's predictions, fixed once for every stage
        with torch.no_grad():
            y, fwd = model(x).argmax(1), x.shape[0]
    x_adv, success = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=device)
    queries, bwd = torch.zeros(x.shape[0], dtype=torch.int64, device=device), 0
    y = torch.as_tensor(y, device=device)
    for i, name in enumerate(stages):
        idx = (~success).nonzero()[:, 0]
        if not idx.numel():
            break
        r = run_named(
            name,
            model,
            x[idx],
            y[idx],
            norm=norm,
            eps=eps,
            steps=steps,
            bounds=bounds,
            device=device,
            precision=precision,
            channels_last=channels_last,
            seed=seed + i,
            **options.get(name, {}),
        )
        x_adv[idx[r.success]], success[idx] = r.x_adv[r.success], r.success
        fwd, bwd, warnings = fwd + r.forward_passes, bwd + r.backward_passes, warnings + r.warnings
        if r.queries is not None:
            queries[idx] += r.queries
    return AttackResult(
        x_adv=x_adv,
        success=success,
        norms=lp_norm(x_adv - x, norm),
        forward_passes=fwd,
        backward_passes=bwd,
        attack="cascade",
        norm=norm,
        eps=eps,
        queries=queries,
        warnings=tuple(dict.fromkeys(warnings)),
        seconds=time.perf_counter() - start,
    )
