"""Fast gradient sign method: :func:`fgsm`."""

from __future__ import annotations

from typing import Any

import torch

from scoring.attacks._ops import LOSSES, clip, fooled
from scoring.attacks.base import AttackResult, Problem, check_norm, check_real, run_attack

__all__ = ["fgsm"]


def _core(p: Problem, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None):
    _, grad, _ = p.oracle.gradient(x, lambda z: LOSSES["ce"](z, y, t), fp32=False)
    x_adv = clip(x + p.eps * grad.sign(), p.bounds)
    return x_adv, fooled(p.oracle.logits(x_adv), y, t), None


def fgsm(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    bounds: tuple[float, float] | None = (0.0, 1.0),
    target: Any = None,
    device: Any = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    seed: int = 0,
) -> AttackResult:
    """One signed-gradient step of size ``eps`` (Goodfellow, Shlens & Szegedy 2015).

    ``x_adv = clip(x + eps * sign(∇_x CE(f(x), y)))``, or ``x - eps * sign(∇_x CE(f(x), t))``
    towards a target ``t``. L∞ only. One forward-backward and one forward pass per point.

    Parameters
    ----------
    model : callable
        Maps a float tensor of shape (N, ...) to logits of shape (N, n_classes); a
        ``torch.compile``d module too (on a GPU the fastest way to run bf16 attacks).
    x : Tensor or ndarray of shape (N, ...)
        Inputs inside ``bounds``.
    y : Tensor or ndarray of shape (N,), optional
        Labels; the model's own predictions when omitted.
    eps : float
        L∞ radius, in input units.
    norm : {"linf"}
        The only norm FGSM supports.
    bounds : (float, float) or None, default=(0.0, 1.0)
        Valid input range; None for unbounded features.
    target : Tensor of shape (N,), optional
        Target classes for a targeted attack.
    device : str or torch.device, optional
        Where to attack; the model's device when omitted. The model must already live there.
    precision : {"fp32", "bf16"}, default="fp32"
        bf16 runs the gradient pass under autocast; success is always decided in fp32.
    channels_last : bool, optional
        Run the model in channels-last (NHWC) memory, which convolutions read faster (see
        :class:`scoring.inputs.ChannelsLast`); its weights are switched back afterwards.
        Default: when ``x`` is (N, C, H, W) and the model holds 4-D weights. The result is
        the same up to the order of floating-point sums; pass False to rule that out.
    seed : int, default=0
        Unused (FGSM is deterministic); accepted for a uniform signature.

    Returns
    -------
    AttackResult

    References
    ----------
    I. Goodfellow, J. Shlens, C. Szegedy, "Explaining and harnessing adversarial examples",
    ICLR 2015.

    Examples
    --------
    A model whose logits are its inputs: class 0 wins by a margin of 0.2 on the first point.

    >>> model = torch.nn.Identity()
    >>> x, y = torch.tensor([[0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1])
    >>> r = fgsm(model, x, y, eps=0.15)
    >>> r.success
    tensor([ True, False])
    >>> r.x_adv, r.norms
    (tensor([[0.4500, 0.5500],
            [0.3000, 0.7000]]), tensor([0.1500, 0.0000]))
    """
    check_norm(norm, ("linf",), "fgsm")
    eps = check_real("eps", eps, 0.0, "fgsm", open_low=False)
    return run_attack(
        "fgsm",
        _core,
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
