"""Open Inference Protocol tensors: JSON ``{name, shape, datatype, data}`` to numpy rows.

Data is converted with one ``np.asarray`` per tensor and checked vectorised: numbers only,
exactly ``prod(shape)`` values (flat or nested, row-major), integers in range for INT/UINT,
booleans for BOOL, values in range for FP16/FP32, finite values for inputs. FP16/FP32/FP64 data
stays float64, the precision JSON carries (the consumer casts whole batches at once, which is far
cheaper than a cast per record); integer and BOOL data take their declared dtype.

Examples
--------
>>> t = parse_tensor({"name": "x", "shape": [2, 2], "datatype": "INT8", "data": [1, 2, 3, 4]},
...                  "OIP input", check_finite=True)
>>> t.rows.dtype, t.shape, t.rows.tolist()
(dtype('int8'), [2, 2], [[1, 2], [3, 4]])
>>> parse_tensor({"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}, "OIP input",
...              check_finite=True)
Traceback (most recent call last):
...
agent.events.DecodeError: OIP input 'x' holds 300, out of the INT8 range [-128, 127]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from agent.codecs.arrays import all_finite, leaves, non_finite_error, offender, sum_of_squares
from agent.events import DecodeError

DATATYPES: dict[str, np.dtype] = {
    name: np.dtype(dtype)
    for name, dtype in [
        ("BOOL", np.bool_),
        ("INT8", np.int8),
        ("INT16", np.int16),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("UINT8", np.uint8),
        ("UINT16", np.uint16),
        ("UINT32", np.uint32),
        ("UINT64", np.uint64),
        ("FP16", np.float16),
        ("FP32", np.float32),
        ("FP64", np.float64),
    ]
}
"""The OIP datatypes robustwatch decodes, and their numpy dtypes (BYTES is not one)."""

_FLOAT64 = np.dtype(np.float64)
_EXACT_FLOATS = 2.0**53  # float64 holds every integer below this exactly
# Below this sum of squares (sum_of_squares), every float64 value is finite and within the datatype.
_SAFE_SQUARES = {
    "FP16": float(np.finfo(np.float16).max) ** 2,
    "FP32": float(np.finfo(np.float32).max) ** 2,
    "FP64": math.inf,
}


class Tensor(NamedTuple):
    """A decoded OIP tensor: its declared shape, and its values as 2-D (rows, features).

    The first dimension of a shape of 2 or more dimensions is the batch; a 1-D tensor is one
    row (see `stack_rows` for 1-D outputs that hold one value per row).
    """

    name: str
    datatype: str
    shape: list[int]
    rows: np.ndarray


FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})


def batchable_data(spec: object) -> list | None:
    """The ``data`` of a tensor that `agent.codecs.arrays.flat_float_rows` may convert ahead
    for `parse_tensor` (``converted``), or None.

    Only a flat list for a float datatype, whose first value is not a boolean: numpy reads a
    list of booleans alone as a bool array, which a float datatype rejects, where ``struct``
    would read 0.0 and 1.0 (a list with any other number is read as numbers by both).
    """
    if type(spec) is not dict:
        return None
    data = spec.get("data")
    if type(data) is not list or not data or type(data[0]) is bool:
        return None
    return data if spec.get("datatype") in FLOAT_DATATYPES else None


def parse_tensor(
    spec: object, role: str, *, check_finite: bool, converted: np.ndarray | None = None
) -> Tensor:
    """Decode one OIP tensor object; ``role`` ("OIP input", "OIP output") names it in errors.

    ``converted``, when given, is the tensor's ``data`` already read as ``np.asarray`` would
    (1-D float64, finite: `batchable_data` and `flat_float_rows` make it); every check runs as
    without it.
    """
    try:
        name, shape, datatype, data = spec["name"], spec["shape"], spec["datatype"], spec["data"]
    except (KeyError, TypeError, IndexError):
        raise _malformed(spec, role) from None
    if type(shape) is not list:
        raise _bad_shape(shape, role, name)
    expected = 1
    for size in shape:
        if type(size) is not int or size < 0:
            raise _bad_shape(shape, role, name)
        expected *= size
    if expected == 0:
        raise DecodeError(
            "bad-shape", f"{_label(role, name)} declares shape {shape}, which holds no values"
        )
    if type(datatype) is not str or datatype not in DATATYPES:
        raise DecodeError("bad-dtype", _unknown_datatype(datatype, _label(role, name)))
    try:
        array = np.asarray(data) if converted is None else converted
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise DecodeError(
            "bad-shape",
            f"{_label(role, name)} data is ragged: nested lists must all have the same length "
            "(and nest at most 64 deep)",
        ) from None
    if array.size != expected:
        raise DecodeError(
            "bad-shape",
            f"{_label(role, name)} declares shape {shape} ({expected} values) but carries "
            f"{array.size} values",
        )
    if array.dtype.kind not in "biuf":
        raise offender(data, _label(role, name), f"{datatype} data must be numbers")
    flat = array if array.ndim == 1 else array.reshape(-1)
    # Converted data is finite and below 2**63 in magnitude: within FP32 and FP64 range.
    if converted is None or datatype == "FP16":
        safe = _SAFE_SQUARES.get(datatype)
        # The fast path, inlined: float data for a float datatype, all finite and in range.
        if safe is None or flat.dtype.kind != "f" or not sum_of_squares(flat) < safe:
            flat = _convert(flat, data, datatype, role, name, check_finite)
    return Tensor(name, datatype, shape, flat.reshape(shape[0] if len(shape) > 1 else 1, -1))


def stack_rows(tensors: list[Tensor], role: str, batch: int | None = None) -> np.ndarray:
    """Concatenate the rows of several tensors into one 2-D (rows, features) array.

    A 1-D tensor is one row, unless ``batch`` (the request's row count, for outputs) is above 1
    and equals its length: then it holds one value per row (e.g. predicted class indices).
    """
    parts = []
    rows = batch
    for tensor in tensors:
        part = tensor.rows
        if batch is not None and batch > 1 and len(tensor.shape) == 1 and tensor.shape[0] == batch:
            part = part.reshape(batch, 1)
        if rows is None:
            rows = part.shape[0]
        elif part.shape[0] != rows:
            raise DecodeError(
                "bad-shape",
                f"{role} {tensor.name!r} has a batch of {part.shape[0]} rows where {rows} were "
                "expected; every tensor's first dimension is the batch and must agree",
            )
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts, axis=1)


def _convert(
    flat: np.ndarray, data: object, datatype: str, role: str, name: object, check_finite: bool
) -> np.ndarray:
    kind = flat.dtype.kind
    dtype = DATATYPES[datatype]
    if dtype.kind == "f":
        if kind == "f":
            if not sum_of_squares(flat) < _SAFE_SQUARES[datatype]:
                _check_float(flat, datatype, _label(role, name), check_finite)
            return flat
        if kind == "b":
            raise DecodeError(
                "bad-dtype", f"{_label(role, name)} holds booleans; send numbers or use BOOL"
            )
        flat = flat.astype(_FLOAT64)
        if datatype == "FP16" and not sum_of_squares(flat) < _SAFE_SQUARES[datatype]:
            _check_float(flat, datatype, _label(role, name), check_finite)
        return flat
    if dtype.kind == "b":
        if kind != "b" and (kind == "f" or not np.isin(flat, (0, 1)).all()):
            raise DecodeError(
                "bad-dtype", f"{_label(role, name)} must hold true/false (or 0/1) values"
            )
        return flat.astype(dtype, copy=False)
    return _to_int(flat, data, datatype, _label(role, name), check_finite)


def _check_float(flat: np.ndarray, datatype: str, what: str, check_finite: bool) -> None:
    """The slow path: name the NaN/infinity, or the value beyond FP16/FP32 range."""
    if not all_finite(flat):
        if check_finite:
            raise non_finite_error(flat, what)
        return
    if datatype != "FP64":
        with np.errstate(over="ignore"):
            narrowed = flat.astype(DATATYPES[datatype])
        if not np.isfinite(narrowed).all():
            raise _out_of_range(flat, datatype, what)


def _to_int(
    flat: np.ndarray, data: object, datatype: str, what: str, check_finite: bool
) -> np.ndarray:
    dtype = DATATYPES[datatype]
    kind = flat.dtype.kind
    if kind == "b":
        raise DecodeError("bad-dtype", f"{what} holds booleans; send integers or use BOOL")
    info = np.iinfo(dtype)
    if kind == "f":
        if not all_finite(flat):
            if check_finite:
                raise non_finite_error(flat, what)
            raise DecodeError(
                "bad-dtype", f"{what} holds NaN or infinity; {datatype} needs integers"
            )
        fractional = np.flatnonzero(np.trunc(flat) != flat)
        if fractional.size:
            index = int(fractional[0])
            raise DecodeError(
                "bad-dtype",
                f"{what} holds {flat[index]} at flat index {index}; {datatype} data must be "
                "integers",
            )
        if dtype.itemsize == 8 and np.abs(flat).max() >= _EXACT_FLOATS:
            # numpy makes mixed int64/uint64 lists float64: re-read 64-bit integers exactly.
            return _exact_ints(data, datatype, what)
        if flat.min() < float(info.min) or flat.max() >= float(info.max) + 1:
            raise _out_of_range(flat, datatype, what)
    elif (
        flat.size
        and not np.can_cast(flat.dtype, dtype)
        and (int(flat.min()) < info.min or int(flat.max()) > info.max)
    ):
        raise _out_of_range(flat, datatype, what)
    return flat.astype(dtype)


def _exact_ints(data: object, datatype: str, what: str) -> np.ndarray:
    info = np.iinfo(DATATYPES[datatype])
    values = [int(item) for item in leaves(data)]
    for value in values:
        if not info.min <= value <= info.max:
            raise DecodeError(
                "bad-dtype",
                f"{what} holds {value}, out of the {datatype} range [{info.min}, {info.max}]",
            )
    return np.array(values, dtype=DATATYPES[datatype])


def _out_of_range(flat: np.ndarray, datatype: str, what: str) -> DecodeError:
    dtype = DATATYPES[datatype]
    if dtype.kind == "f":
        worst = flat[int(np.argmax(np.abs(flat)))]
        return DecodeError(
            "bad-dtype",
            f"{what} holds {worst}, beyond the {datatype} range (+/-{np.finfo(dtype).max})",
        )
    info = np.iinfo(dtype)
    low, high = flat.min(), flat.max()
    worst = low if low < info.min else high
    if flat.dtype.kind != "f":
        worst = int(worst)
    return DecodeError(
        "bad-dtype", f"{what} holds {worst}, out of the {datatype} range [{info.min}, {info.max}]"
    )


def _label(role: str, name: object) -> str:
    return f"{role} {name!r}" if isinstance(name, str) else role


def _malformed(spec: object, role: str) -> DecodeError:
    if not isinstance(spec, dict):
        return DecodeError(
            "missing-field",
            f"each {role} must be an object with 'name', 'shape', 'datatype' and 'data'; got "
            f"{spec!r:.60}",
        )
    what = _label(role, spec.get("name"))
    field = next(f for f in ("name", "shape", "datatype", "data") if f not in spec)
    parameters = spec.get("parameters")
    if field == "data" and isinstance(parameters, dict) and "binary_data_size" in parameters:
        detail = (
            f"{what} has no 'data': it uses the binary tensor extension (binary_data_size), "
            "which robustwatch does not read; log JSON tensors instead"
        )
    else:
        detail = (
            f"{what} has no {field!r}; an OIP tensor needs 'name', 'shape', 'datatype' and 'data'"
        )
    return DecodeError("missing-field", detail)


def _bad_shape(shape: object, role: str, name: object) -> DecodeError:
    return DecodeError(
        "bad-shape",
        f"{_label(role, name)} has shape {shape!r:.60}; a shape is a list of integers >= 0",
    )


def _unknown_datatype(datatype: object, what: str) -> str:
    if datatype == "BYTES":
        return (
            f"{what} has datatype BYTES: byte tensors are not supported; robustwatch monitors "
            "numeric tensors, so log the numeric features (e.g. FP32) instead"
        )
    return f"{what} has datatype {datatype!r:.40}; expected one of {', '.join(DATATYPES)}"
