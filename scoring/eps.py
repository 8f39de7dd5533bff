"""The eps grid: derived from the data and the input range (``eps="auto"``), and eps50.

Rule of ``eps="auto"`` (:func:`auto_eps`):

* bounded inputs ``[low, high]`` (images): L∞ radii ``(1, 2, 4, 8, 16) / 255 · (high - low)``,
  i.e. 1 to 16 grey levels of an 8-bit image whatever the scale;
* unbounded inputs (standardised tabular features, ``bounds=None``): L∞ radii
  ``(1, 2, 4, 8, 16) / 64 · s``, fractions 1/64 to 1/4 of ``s``, the median over features of
  the per-feature standard deviation of ``x``;
* L2: each L∞ radius ``e`` becomes the radius of the L2 ball of the same volume in ``d``
  dimensions, ``r = 2 e Γ(d/2 + 1)^(1/d) / √π`` (about ``0.48 e √d`` for large ``d``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from scoring.exceptions import DataError, ParameterError

__all__ = ["auto_eps", "eps50", "eps_grid", "equal_volume_l2"]

_STEPS = (1, 2, 4, 8, 16)


def equal_volume_l2(eps: float, d: int) -> float:
    """Radius of the L2 ball with the volume of the L∞ ball of radius ``eps`` in ``d`` dims.

    ``π^(d/2) r^d / Γ(d/2 + 1) = (2 eps)^d``, so ``r = 2 eps Γ(d/2 + 1)^(1/d) / √π``.

    >>> round(equal_volume_l2(1.0, 2), 4)  # a disc of area 4: radius 2 / √π
    1.1284
    """
    return 2 * eps * math.exp(math.lgamma(d / 2 + 1) / d) / math.sqrt(math.pi)


def auto_eps(x: torch.Tensor, norm: str, bounds: tuple[float, float] | None) -> tuple[float, ...]:
    """The five-point eps grid of the module's rule, ascending.

    Examples
    --------
    >>> x = torch.zeros(4, 3, 8, 8)
    >>> [round(e * 255, 6) for e in auto_eps(x, "linf", (0.0, 1.0))]
    [1.0, 2.0, 4.0, 8.0, 16.0]
    >>> [round(e, 4) for e in auto_eps(x, "l2", (0.0, 1.0))]
    [0.0267, 0.0535, 0.107, 0.2139, 0.4278]
    >>> tab = torch.tensor([[0.0, 10.0], [2.0, 30.0]])  # per-feature std 1 and 10: median 5.5
    >>> [round(e, 4) for e in auto_eps(tab, "linf", None)]
    [0.0859, 0.1719, 0.3438, 0.6875, 1.375]
    """
    if bounds is not None:
        unit = (bounds[1] - bounds[0]) / 255
    else:
        flat = x.flatten(1).double()
        unit = float(flat.std(0, unbiased=False).quantile(0.5)) / 64 if flat.shape[0] > 1 else 0.0
        if not unit > 0:
            raise DataError(
                "eps='auto' needs features that vary: the median per-feature standard "
                "deviation of x is 0. Pass eps explicitly, e.g. eps=[0.01, 0.05]."
            )
    grid = tuple(k * unit for k in _STEPS)
    if norm == "l2":
        d = x[0].numel()
        grid = tuple(equal_volume_l2(e, d) for e in grid)
    return grid


def eps_grid(eps: Any, x: torch.Tensor, norm: str, bounds) -> tuple[float, ...]:
    """The ascending, de-duplicated grid of ``eps``: ``"auto"``, a float or floats.

    >>> eps_grid([0.03, 0.01, 0.03], torch.zeros(1, 4), "linf", (0, 1))
    (0.01, 0.03)
    """
    if isinstance(eps, str) and eps == "auto":
        return auto_eps(x, norm, bounds)
    try:
        values = np.asarray(eps, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if (
        isinstance(eps, str | bool)
        or not values.size
        or not np.all(np.isfinite(values) & (values > 0))
    ):
        raise ParameterError(f"eps must be 'auto' or positive finite floats. Got {eps!r} instead.")
    return tuple(sorted({float(e) for e in values}))


def eps50(eps: Sequence[float], robust_accuracy: Sequence[float], clean: float) -> float | None:
    """Smallest eps at which robust accuracy falls to half the clean accuracy.

    The curve starts at ``(0, clean)``; within the first grid interval whose right end has
    robust accuracy ``<= clean / 2`` the crossing is linearly interpolated. None when the
    curve never falls that far on the grid.

    Examples
    --------
    >>> eps50([0.1, 0.2, 0.3], [0.8, 0.6, 0.2], clean=0.9)
    0.2375
    >>> eps50([0.1, 0.2], [0.8, 0.7], clean=0.9) is None
    True
    """
    half = clean / 2
    e0, a0 = 0.0, clean
    for e1, a1 in sorted(zip(eps, robust_accuracy, strict=True)):
        if a1 <= half:
            if a0 == a1:
                return e0
            return e0 + (a0 - half) * (e1 - e0) / (a0 - a1)
        e0, a0 = e1, a1
    return None
