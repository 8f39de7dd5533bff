"""What every attack shares: its result type, a counting model oracle and the run template.

An attack is a pure function ``attack(model, x, y, *, eps, norm, ...) -> AttackResult``. The
template :func:`run_attack` validates the inputs, puts the model in eval mode, finds the points
the model already gets wrong (they count as broken at zero cost) and hands only the others to
the attack's core, which works on the model's device through an :class:`Oracle`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from scoring._validation import check_int, check_norm, check_precision, check_real
from scoring.attacks._ops import fooled, lp_norm
from scoring.exceptions import LabelError, ParameterError
from scoring.inputs import (
    ChannelsLast,
    as_inputs,
    as_labels,
    check_bounds,
    check_logits,
    eval_mode,
    model_device,
    resolve_device,
)

__all__ = [
    "NORMS",
    "AttackResult",
    "Oracle",
    "Problem",
    "check_int",
    "check_norm",
    "check_real",
    "run_attack",
]

NORMS = ("linf", "l2")
Bounds = tuple[float, float] | None


@dataclass(frozen=True, eq=False)
class AttackResult:
    """Outcome of one attack on a batch of N inputs.

    Attributes
    ----------
    x_adv : Tensor of shape (N, ...)
        Adversarial inputs where ``success``, the clean inputs elsewhere.
    success : bool Tensor of shape (N,)
        Whether the fp32 model is fooled by ``x_adv`` (predicts the target, if one was given).
        Points misclassified to begin with are successes at zero perturbation.
    norms : Tensor of shape (N,)
        ``||x_adv - x||`` in the attack's norm (0 where the attack failed).
    forward_passes, backward_passes : int
        Input rows sent forward through the model, and rows back-propagated to the input.
    attack, norm : str
        Attack name and norm (``"linf"`` or ``"l2"``).
    eps : float or None
        Radius of the threat model; None for minimal-perturbation attacks (C&W).
    queries : int Tensor of shape (N,) or None
        Model queries per point, for score-based attacks.
    warnings : tuple of str
        Why the evaluation may be invalid (probability outputs, zero gradients, ...).
    seconds : float
        Wall-clock time of the attack.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    norms: torch.Tensor
    forward_passes: int
    backward_passes: int
    attack: str
    norm: str
    eps: float | None
    queries: torch.Tensor | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def robust_accuracy(self) -> float:
        """Fraction of points not broken; meaningful for untargeted attacks on true labels."""
        return 1.0 - float(self.success.float().mean())


class Oracle:
    """The model as attacks see it: fp32 or bf16-autocast passes, counted row by row.

    Gradients are taken with respect to inputs only (``torch.autograd.grad``), so parameters
    never receive ``.grad``. Under ``precision="bf16"`` the gradient pass runs in autocast,
    and the logits used to decide success come from a separate fp32 forward pass (or, for
    attacks that confirm their candidates in fp32 themselves, from the autocast pass).
    """

    def __init__(self, model: Callable, precision: str, device: torch.device) -> None:
        self.model = model
        self.precision = precision
        self.device = device
        self.forward_passes = 0
        self.backward_passes = 0
        self.warnings: list[str] = []
        self._gradient_checked = False

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 logits, without gradient."""
        out = self.model(x)
        self.forward_passes += x.shape[0]
        return out.float() if isinstance(out, torch.Tensor) else out

    def gradient(
        self, x: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor], fp32: bool = True
    ):
        """``loss(model(x))``, its gradient w.r.t. ``x`` and the logits at ``x``.

        ``loss`` maps fp32 logits to per-example losses, whose sum is differentiated, or
        directly to that sum (a scalar: one fused reduction, for attacks that only need the
        gradient). In fp32 the logits are those of the gradient pass itself. Under bf16 they
        come from a separate fp32 forward pass, unless ``fp32=False``: then they are the
        gradient pass's own, for an attack that confirms in fp32 what it decides on them.
        """
        if not torch.is_grad_enabled():  # called under torch.no_grad()
            with torch.enable_grad():
                return self.gradient(x, loss, fp32)
        x = x.detach().requires_grad_(True)
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                z = self.model(x)
        else:
            z = self.model(x)
        z = z.float()
        value = loss(z)
        total = value.sum() if value.dim() else value
        (grad,) = torch.autograd.grad(total, x, allow_unused=True)
        n = x.shape[0]
        self.forward_passes += n
        self.backward_passes += n
        grad = torch.zeros_like(x) if grad is None else grad
        if not self._gradient_checked:  # once, at the first (clean or random-start) points
            self._gradient_checked = True
            self._check_gradient(grad)
        z32 = self.logits(x.detach()) if self.precision == "bf16" and fp32 else z.detach()
        return value.detach(), grad, z32

    def _check_gradient(self, grad: torch.Tensor) -> None:
        if zero := int((grad.flatten(1).abs().amax(1) == 0).sum()):
            self.warnings.append(
                f"{zero} of {grad.shape[0]} inputs had an all-zero input gradient (gradient "
                "masking or saturated outputs): gradient attacks may overestimate robustness "
                "there; add a score-based attack such as 'square'."
            )


@dataclass(frozen=True)
class Problem:
    """What an attack core needs besides the points: oracle, threat model and generator."""

    oracle: Oracle
    eps: float
    norm: str
    bounds: Bounds
    generator: torch.Generator
    n_classes: int


def _rows(idx: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor | None:
    return None if v is None else v.index_select(0, idx)


def run_attack(
    attack: str,
    core: Callable,
    model: Callable,
    x: Any,
    y: Any,
    *,
    eps: float | None,
    norm: str,
    bounds: Bounds,
    target: Any,
    device: Any,
    precision: str,
    seed: int,
    channels_last: bool | None = None,
    counts_queries: bool = False,
) -> AttackResult:
    """Validate, find the points still robust, run ``core`` on them and assemble the result.

    ``core(problem, x, y, target) -> (x_adv, success, queries or None)`` sees only points that
    the model classifies correctly (or not yet as ``target``), in the memory layout the model
    runs on (see :class:`~scoring.inputs.ChannelsLast`); the result is in the usual one.
    """
    check_precision(precision)
    check_int("seed", seed, 0, attack)
    device = resolve_device(device, model)
    own = model_device(model, None)
    if own is not None and own.type != device.type:
        raise ParameterError(
            f"The model lives on {own} but device={device}; move it first "
            f"(model.to('{device}')) or pass device=None to use the model's device."
        )
    start = time.perf_counter()
    x = as_inputs(x, device)
    check_bounds(x, bounds)
    with eval_mode(model) as notes, ChannelsLast(model, x, channels_last) as layout:
        oracle = Oracle(model, precision, device)
        z, xl = layout.first_call(oracle.logits, x)
        warnings = notes + check_logits(z, x.shape[0])
        y = z.argmax(1) if y is None else as_labels(y, x.shape[0], z.shape[1], device)
        if target is not None:
            target = as_labels(target, x.shape[0], z.shape[1], device)
            if bool((target == y).any()):
                raise LabelError("target equals the label for some points; pick other classes.")
        success = fooled(z, y, target)
        x_adv, queries = xl, torch.zeros(x.shape[0], dtype=torch.int64, device=device)
        todo = (~success).nonzero()[:, 0]
        if todo.numel():
            gen = torch.Generator(device=device).manual_seed(seed)
            problem = Problem(oracle, eps or 0.0, norm, bounds, gen, z.shape[1])
            every = todo.numel() == x.shape[0]  # the usual case: no gathering, no scattering
            sub = (xl, y, target) if every else [_rows(todo, v) for v in (xl, y, target)]
            xa, ok, q = core(problem, *sub)
            xa = torch.where(ok.reshape((-1,) + (1,) * (x.dim() - 1)), xa, sub[0])
            if every:
                x_adv, success, queries = xa, ok, queries if q is None else q
            else:
                x_adv, success = xl.index_copy(0, todo, xa), success.index_copy(0, todo, ok)
                queries = queries if q is None else queries.index_copy(0, todo, q)
        # never the caller's own tensor, and in the usual layout whatever the model ran on
        x_adv = x.clone() if x_adv is x else x_adv.contiguous()
    return AttackResult(
        x_adv=x_adv,
        success=success,
        norms=lp_norm(x_adv - x, norm),
        forward_passes=oracle.forward_passes,
        backward_passes=oracle.backward_passes,
        attack=attack,
        norm=norm,
        eps=eps,
        queries=queries if counts_queries else None,
        warnings=warnings + tuple(oracle.warnings),
        seconds=time.perf_counter() - start,
    )
