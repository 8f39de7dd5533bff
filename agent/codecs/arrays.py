"""JSON numbers to numpy arrays: conversion, finiteness checks, and exact error messages.

Conversions take one ``np.asarray`` and vectorised checks; only error paths walk the values in
Python, to name the first offending one.

Examples
--------
>>> numeric_rows([[1, 2], [3, 4]], "plain 'inputs'", rows=True).tolist()
[[1.0, 2.0], [3.0, 4.0]]
>>> numeric_rows([1, "a"], "plain 'inputs'", rows=False)
Traceback (most recent call last):
...
agent.events.DecodeError: plain 'inputs' holds 'a' at flat index 1; it must hold only numbers
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from agent.events import DecodeError

_NUMERIC_KINDS = frozenset("biuf")
vdot = np.vdot  # flattens its inputs and, unlike ndarray.dot, does not warn on overflow


def all_finite(values: np.ndarray) -> bool:
    """Whether a float array holds no NaN or infinity.

    The fast path is one dot product (``np.vdot``, which flattens and, unlike ``dot``, does not
    warn on overflow): a finite sum of squares means every value is finite.
    """
    return math.isfinite(vdot(values, values)) or bool(np.isfinite(values).all())


def non_finite_error(values: np.ndarray, what: str) -> DecodeError:
    """The ``non-finite`` error naming the first NaN or infinity of ``values``."""
    flat = values.reshape(-1)
    index = int(np.flatnonzero(~np.isfinite(flat))[0])
    return DecodeError(
        "non-finite",
        f"{what} holds {flat[index]} at flat index {index}; inputs must be finite numbers "
        "(NaN and infinity are rejected)",
    )


def offender(value: object, what: str, expected: str) -> DecodeError:
    """The ``bad-dtype`` error naming the first item of the JSON ``value`` (flat or nested
    lists) that is not a number."""
    for index, item in enumerate(leaves(value)):
        if isinstance(item, bool) or not isinstance(item, int | float):
            return DecodeError(
                "bad-dtype", f"{what} holds {item!r:.40} at flat index {index}; {expected}"
            )
    return DecodeError("bad-dtype", f"{what} holds an integer too large for 64 bits; {expected}")


def numeric_rows(value: object, what: str, *, rows: bool, check_finite: bool = True) -> np.ndarray:
    """Convert a JSON number list (flat or nested) to float64.

    With ``rows`` the first dimension is the batch and the result is 2-D (rows, features);
    without, the whole value is one row and the result is 1-D. A scalar is one value.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise DecodeError(
            "bad-shape",
            f"{what} is ragged: nested lists must all have the same length (and nest at most "
            "64 deep)",
        ) from None
    if array.dtype.kind != "f":
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise offender(value, what, "it must hold only numbers")
        array = array.astype(np.float64)
    elif check_finite and not all_finite(array):
        raise non_finite_error(array, what)
    if rows:
        if array.ndim == 0 or array.shape[0] == 0:
            raise DecodeError("bad-shape", f"{what} holds no rows")
        return array if array.ndim == 2 else array.reshape(array.shape[0], -1)
    return array if array.ndim == 1 else array.reshape(-1)


def leaves(value: object) -> Iterator[object]:
    """Yield the non-list items of nested lists in row-major order (iteratively)."""
    stack = [iter([value])]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()
