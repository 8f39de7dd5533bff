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
import struct
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from itertools import compress, starmap

import numpy as np

from agent.events import DecodeError

_NUMERIC_KINDS = frozenset("biuf")
#: OpenBLAS computes a dot product of at most 10,000 values on the calling thread; beyond,
#: it wakes its thread pool, whose spinning steals the core the Kafka client's thread needs.
_ONE_THREAD_DOT = 8192
_LARGEST = 2.0**63  # numpy reads an integer list with a value beyond this as uint64 or object
_SAFE_SQUARES = _LARGEST**2  # a smaller sum of squares: all finite, all below _LARGEST
_NOT_NUMBERS = (struct.error, TypeError, OverflowError)  # what struct raises on a non-number


def sum_of_squares(values: np.ndarray) -> float:
    """The sum of the squared values of an array, any shape: inf or NaN unless every value is
    finite (or the sum overflows).

    Dot products (``np.vdot``, which flattens and, unlike ``dot``, does not warn on overflow)
    of at most ``_ONE_THREAD_DOT`` values, so BLAS never starts threads on the decode path.

    >>> sum_of_squares(np.arange(10_000.0)) == float(np.sum(np.arange(10_000.0) ** 2))
    True
    """
    flat = values.reshape(-1)
    if flat.size <= _ONE_THREAD_DOT:
        return float(np.vdot(flat, flat))
    return math.fsum(
        float(np.vdot(chunk, chunk))
        for chunk in (flat[i : i + _ONE_THREAD_DOT] for i in range(0, flat.size, _ONE_THREAD_DOT))
    )


def all_finite(values: np.ndarray) -> bool:
    """Whether a float array holds no NaN or infinity.

    The fast path is one sum of squares (`sum_of_squares`): a finite one means every value is
    finite.
    """
    return math.isfinite(sum_of_squares(values)) or bool(np.isfinite(values).all())


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


def flat_float_rows(values: Sequence[object]) -> list[np.ndarray | None]:
    """Convert many flat JSON number lists at once, as `numeric_rows` would one by one.

    Item ``i`` is exactly ``numeric_rows(values[i], what, rows=False)`` (1-D float64, equal
    values), or None where that is not certain: then convert ``values[i]`` alone, which also
    gives its exact error. Lists of one length become rows (views) of one 2-D array.

    Faster than `numeric_rows` per list: ``struct`` packs a list of Python numbers into C
    doubles in one call, and the finiteness check runs once per length. It is strict where
    ``np.asarray`` is lenient, so None marks every list numpy could read otherwise: one holding
    anything but numbers (``struct`` rejects strings, None and lists), and one holding NaN,
    infinity or a value of magnitude 2**63 or more (numpy reads such an integer as uint64 or
    object). Booleans are numbers to both.

    >>> rows = flat_float_rows([[1, 2.5], [3.0, "4"], [5.0, float("nan")], [True, 7], None])
    >>> [None if row is None else row.tolist() for row in rows]
    [[1.0, 2.5], None, None, [1.0, 7.0], None]
    """
    rows: list[np.ndarray | None] = [None] * len(values)
    by_width: defaultdict[int, list[int]] = defaultdict(list)
    for index, value in enumerate(values):
        if type(value) is list:
            by_width[len(value)].append(index)
    by_width.pop(0, None)  # no features: numeric_rows' empty row, then check_features' error
    for width, taken in by_width.items():
        pack = struct.Struct(f"{width}d").pack
        try:
            packed = bytearray().join(starmap(pack, [values[i] for i in taken]))
        except _NOT_NUMBERS:  # some list is not numbers: pack them one by one, keep the others
            packed, taken = _pack_each(pack, values, taken)
        block = np.frombuffer(packed, np.float64).reshape(len(taken), width)
        if not sum_of_squares(block) < _SAFE_SQUARES:  # a value is non-finite or too large
            sure = (np.abs(block) < _LARGEST).all(axis=1)
            taken, block = list(compress(taken, sure)), block[sure]
        for index, row in zip(taken, block, strict=True):
            rows[index] = row
    return rows


def _pack_each(
    pack: Callable[..., bytes], values: Sequence[object], taken: list[int]
) -> tuple[bytearray, list[int]]:
    chunks, kept = [], []
    for index in taken:
        try:
            chunks.append(pack(*values[index]))
        except _NOT_NUMBERS:
            continue
        kept.append(index)
    return bytearray().join(chunks), kept


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
