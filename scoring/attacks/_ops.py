"""Small pure tensor helpers shared by the attacks: norms, projections, steps and losses.

Every loss is per example (``reduction='none'``) and written to be *maximised* by the
attacker, so that the best iterate can be kept point by point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scoring.exceptions import ParameterError

__all__ = [
    "LOSSES",
    "ascent_direction",
    "clip",
    "fooled",
    "lp_norm",
    "margin",
    "project",
    "random_start",
]

Bounds = tuple[float, float] | None


def lp_norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row norm of ``d`` of shape (N, ...): ``max |d_i|`` for linf, ``sqrt(sum d_i^2)``.

    >>> lp_norm(torch.tensor([[3.0, -4.0]]), "linf"), lp_norm(torch.tensor([[3.0, -4.0]]), "l2")
    (tensor([4.]), tensor([5.]))
    """
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _per_row(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def clip(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Clip to the declared input range; identity for unbounded inputs."""
    return x if bounds is None else x.clamp(bounds[0], bounds[1])


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str, bounds: Bounds):
    """Project onto the ``eps`` ball around ``x``, then clip to the input range.

    linf: ``x + clamp(x_adv - x, -eps, eps)`` (exact onto ball ∩ box); l2: ``x + d min(1,
    eps / ||d||)`` with ``d = x_adv - x``, then clipping, which only shrinks ``||d||``.

    >>> project(torch.tensor([[0.9, 0.0]]), torch.tensor([[0.5, 0.5]]), 0.1, "linf", (0, 1))
    tensor([[0.6000, 0.4000]])
    """
    d = x_adv - x
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        scale = (eps / lp_norm(d, "l2").clamp_min(1e-12)).clamp(max=1.0)
        d = d * _per_row(scale, d)
    return clip(x + d, bounds)


def random_start(x: torch.Tensor, eps: float, norm: str, bounds: Bounds, gen: torch.Generator):
    """A point drawn uniformly from the ``eps`` ball around each row of ``x``, then clipped.

    linf: ``x + U[-eps, eps]^d``; l2: direction ``g / ||g||`` with ``g ~ N(0, I)`` and
    radius ``eps u^(1/d)``, ``u ~ U[0, 1]`` (uniform in the ball's volume).
    """
    if norm == "linf":
        d = torch.empty_like(x).uniform_(-eps, eps, generator=gen)
    else:
        g = torch.randn(x.shape, generator=gen, device=x.device)
        u = torch.rand(x.shape[0], generator=gen, device=x.device)
        r = eps * u.pow(1.0 / x[0].numel()) / lp_norm(g, "l2").clamp_min(1e-12)
        d = g * _per_row(r, g)
    return clip(d.add_(x), bounds)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest ascent direction of unit norm: ``sign(g)`` for linf, ``g / ||g||_2`` for l2."""
    if norm == "linf":
        return grad.sign()
    return grad / _per_row(lp_norm(grad, "l2").clamp_min(1e-12), grad)


def fooled(z: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Whether each prediction ``argmax z`` differs from ``y`` (reaches ``target`` if given)."""
    pred = z.argmax(1)
    return pred != y if target is None else pred == target


def margin(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{j != y} z_j``: positive while ``y`` is predicted."""
    col = y.unsqueeze(1)
    return z.gather(1, col).squeeze(1) - z.scatter(1, col, float("-inf")).amax(1)


def _ce(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None, reduction: str = "none"):
    """Cross-entropy to ``y``, or minus the cross-entropy to the target ``t``, to maximise."""
    if t is None:
        return F.cross_entropy(z, y, reduction=reduction)
    return -F.cross_entropy(z, t, reduction=reduction)


def _dlr(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020), to maximise.

    Untargeted: ``-(z_y - max_{j != y} z_j) / (z_π1 - z_π3)``; targeted:
    ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)``, with ``z_π1 >= z_π2 >= ...`` sorted.
    """
    need = 3 if t is None else 4
    if z.shape[1] < need:
        raise ParameterError(
            f"The {'targeted ' if t is not None else ''}DLR loss needs at least {need} classes; "
            f"the model has {z.shape[1]}. Use the 'ce' loss (attack 'apgd-ce') instead."
        )
    s = z.sort(1, descending=True).values
    if t is None:
        return -margin(z, y) / (s[:, 0] - s[:, 2] + 1e-12)
    num = z.gather(1, y[:, None])[:, 0] - z.gather(1, t[:, None])[:, 0]
    return -num / (s[:, 0] - (s[:, 2] + s[:, 3]) / 2 + 1e-12)


LOSSES = {"ce": _ce, "dlr": _dlr}
