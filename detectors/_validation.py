"""Validation shared by the detectors: declared parameter constraints and input arrays.

A detector declares a table ``{parameter name: constraint or list of constraints}``;
:func:`validate_params` checks values against it and raises
:class:`~detectors.exceptions.ParameterError` with scikit-learn's wording.
:func:`check_array` turns user input into a finite 2-D float64 array or raises
:class:`~detectors.exceptions.DataError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np

from detectors.exceptions import DataError, ParameterError

__all__ = ["InstanceOf", "Interval", "Options", "SequenceOf", "check_array", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """Numbers of a kind (``Real`` or ``Integral``, never ``bool``) in a range.

    Examples
    --------
    >>> c = Interval(Real, 0, 1, closed="neither")
    >>> str(c), c.is_satisfied_by(0.05), c.is_satisfied_by(1.0)
    ('a float in (0, 1)', True, False)
    """

    kind: type
    low: float | None
    high: float | None
    closed: Literal["left", "right", "both", "neither"] = "both"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.low is not None and not (
            value >= self.low if self.closed in ("left", "both") else value > self.low
        ):
            return False
        if self.high is not None and not (
            value <= self.high if self.closed in ("right", "both") else value < self.high
        ):
            return False
        return not (isinstance(value, Real) and math.isnan(value))

    def __str__(self) -> str:
        name = "an int" if self.kind is Integral else "a float"
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{name} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (``None`` allowed among them).

    Examples
    --------
    >>> str(Options(("bonferroni", "fdr")))
    "a str among {'bonferroni', 'fdr'}"
    """

    options: tuple[Any, ...]

    def is_satisfied_by(self, value: Any) -> bool:
        return any(_same(value, option) for option in self.options)

    def __str__(self) -> str:
        if self.options == (None,):
            return "None"
        kind = "a str" if all(isinstance(o, str) for o in self.options) else "a value"
        return f"{kind} among {{{', '.join(repr(o) for o in self.options)}}}"


@dataclass(frozen=True)
class InstanceOf:
    """An instance of a class (or of one of its subclasses).

    Examples
    --------
    >>> str(InstanceOf(dict)), InstanceOf(dict).is_satisfied_by({})
    ('an instance of dict', True)
    """

    kind: type

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        return f"an instance of {self.kind.__name__}"


@dataclass(frozen=True)
class SequenceOf:
    """A list or tuple of at least ``min_len`` items, each satisfying ``item``.

    Examples
    --------
    >>> c = SequenceOf(Options(("numeric", "categorical")))
    >>> str(c), c.is_satisfied_by(["numeric"]), c.is_satisfied_by([])
    ("a list of at least 1 item, each a str among {'numeric', 'categorical'}", True, False)
    """

    item: Interval | Options
    min_len: int = 1

    def is_satisfied_by(self, value: Any) -> bool:
        return (
            isinstance(value, list | tuple)
            and len(value) >= self.min_len
            and all(self.item.is_satisfied_by(v) for v in value)
        )

    def __str__(self) -> str:
        items = "item" if self.min_len == 1 else "items"
        return f"a list of at least {self.min_len} {items}, each {self.item}"


Constraint = Interval | Options | InstanceOf | SequenceOf


def _same(value: Any, option: Any) -> bool:
    if option is None:
        return value is None
    if isinstance(option, str):
        return isinstance(value, str) and value == option
    return type(value) is type(option) and value == option


def validate_params(
    params: Mapping[str, Any],
    constraints: Mapping[str, Constraint | Sequence[Constraint]],
    caller: str,
) -> None:
    """Check every parameter in ``constraints`` against its declared constraint(s).

    Raises
    ------
    ParameterError
        For the first parameter that satisfies none of its constraints.

    Examples
    --------
    >>> validate_params({"p_val": 1.5}, {"p_val": Interval(Real, 0, 1, closed="neither")},
    ...                 "KSDrift")
    Traceback (most recent call last):
    ...
    detectors.exceptions.ParameterError: The 'p_val' parameter of KSDrift must be a float in (0, 1). Got 1.5 instead.
    """  # noqa: E501
    for name, constraint in constraints.items():
        allowed = [constraint] if isinstance(constraint, Constraint) else constraint
        value = params[name]
        if not any(c.is_satisfied_by(value) for c in allowed):
            expected = " or ".join(str(c) for c in allowed)
            raise ParameterError(
                f"The {name!r} parameter of {caller} must be {expected}. Got {value!r} instead."
            )


def check_array(x: Any, *, name: str, caller: str, min_rows: int = 1) -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape (n_rows, n_features).

    A 1-D input is one feature: shape (n,) becomes (n, 1).

    Raises
    ------
    DataError
        If ``x`` is not numeric, not 1-D or 2-D, has no feature, fewer than ``min_rows``
        rows, or a NaN or infinite value.

    Examples
    --------
    >>> check_array([1.0, 2.0, 3.0], name="x", caller="KSDrift").shape
    (3, 1)
    >>> check_array([[1.0, float("nan")]], name="x", caller="KSDrift")
    Traceback (most recent call last):
    ...
    detectors.exceptions.DataError: x contains NaN or infinite values (first at row 0, feature 1).
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{caller} expects a numeric array for {name}: {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(
            f"{caller} expects {name} of shape (n_rows, n_features); got shape {arr.shape}."
        )
    if arr.shape[1] == 0:
        raise DataError(f"{caller} expects at least 1 feature in {name}; got shape {arr.shape}.")
    if arr.shape[0] < min_rows:
        raise DataError(f"{caller} needs at least {min_rows} rows in {name}; got {arr.shape[0]}.")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(
            f"{name} contains NaN or infinite values (first at row {bad[0]}, feature {bad[1]})."
        )
    return arr


def check_rows(
    x: Any,
    *,
    name: str,
    caller: str,
    shape: tuple[int, ...] | None = None,
    min_rows: int = 1,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Return ``x`` as a finite array of shape (n_rows, *shape): one model input per row.

    Without ``shape`` any row shape is accepted (at least one value per row). With it, a row
    must have that shape or be its flattening, e.g. (64,) for (1, 8, 8).

    Raises
    ------
    DataError
        If ``x`` is not numeric, has no row dimension, fewer than ``min_rows`` rows, rows of
        another shape, or a NaN or infinite value.

    Examples
    --------
    >>> check_rows(np.zeros((2, 64)), name="x", caller="FeatureSqueezing", shape=(1, 8, 8)).shape
    (2, 1, 8, 8)
    >>> check_rows(np.zeros((2, 63)), name="x", caller="FeatureSqueezing", shape=(1, 8, 8))
    Traceback (most recent call last):
    ...
    detectors.exceptions.DataError: FeatureSqueezing expects rows of x of shape (1, 8, 8) (or 64 flat values); got rows of shape (63,).
    """  # noqa: E501
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{caller} expects a numeric array for {name}: {exc}") from None
    if arr.ndim < 2 or math.prod(arr.shape[1:]) == 0:
        raise DataError(
            f"{caller} expects {name} of shape (n_rows, ...) with at least one value per row; "
            f"got shape {arr.shape}. Pass one row per input, e.g. x[None] for a single input."
        )
    if arr.shape[0] < min_rows:
        raise DataError(f"{caller} needs at least {min_rows} rows in {name}; got {arr.shape[0]}.")
    if shape is not None and arr.shape[1:] != tuple(shape):
        if arr.shape[1:] != (math.prod(shape),):
            raise DataError(
                f"{caller} expects rows of {name} of shape {tuple(shape)} (or "
                f"{math.prod(shape)} flat values); got rows of shape {arr.shape[1:]}."
            )
        arr = arr.reshape(-1, *shape)
    finite = np.isfinite(arr.reshape(arr.shape[0], -1)).all(1)
    if not finite.all():
        raise DataError(
            f"{name} contains NaN or infinite values (first in row {int(np.argmin(finite))})."
        )
    return arr
