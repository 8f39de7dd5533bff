"""Parameter checks shared by scoring: messages name the parameter, the function, what was
expected and what was received (scikit-learn's wording)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from scoring.exceptions import ParameterError, UnknownNormError

__all__ = ["PRECISIONS", "check_int", "check_norm", "check_precision", "check_real"]

PRECISIONS = ("fp32", "bf16")


def check_int(name: str, value: Any, low: int, attack: str) -> int:
    """Return ``value`` if it is an int >= ``low``, else raise :class:`ParameterError`.

    >>> check_int("steps", 0, 1, "pgd")
    Traceback (most recent call last):
    ...
    scoring.exceptions.ParameterError: The 'steps' parameter of pgd must be an int >= 1. Got 0 ...
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ParameterError(
            f"The '{name}' parameter of {attack} must be an int >= {low}. Got {value!r} instead."
        )
    return int(value)


def check_real(name: str, value: Any, low: float, attack: str, open_low: bool = True) -> float:
    """Return ``value`` if it is a finite float > ``low`` (>= if not ``open_low``)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (open_low and value == low):
        rel = ">" if open_low else ">="
        raise ParameterError(
            f"The '{name}' parameter of {attack} must be a finite float {rel} {low:g}. "
            f"Got {value!r} instead."
        )
    return float(value)


def check_norm(norm: Any, supported: Sequence[str], attack: str) -> str:
    """Return ``norm`` if ``attack`` supports it, else raise :class:`UnknownNormError`."""
    if norm not in supported:
        raise UnknownNormError(
            f"The 'norm' parameter of {attack} must be one of {', '.join(map(repr, supported))}. "
            f"Got {norm!r} instead."
        )
    return norm


def check_precision(precision: Any) -> str:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``, else raise ParameterError."""
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be 'fp32' or 'bf16'. Got {precision!r} instead.")
    return precision
