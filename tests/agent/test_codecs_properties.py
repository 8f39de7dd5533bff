"""Properties: OIP tensors round-trip, and no input whatsoever makes the decoder raise."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from agent.codecs.kserve import REQUEST_TYPE, RESPONSE_TYPE
from agent.codecs.tensors import DATATYPES
from agent.events import DECODE_REASONS, FORMATS, Decoded, EventDecoder, RawRecord

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tensors(draw):
    datatype = draw(st.sampled_from(sorted(DATATYPES)))
    dtype = DATATYPES[datatype]
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    elements = None
    if dtype.kind == "f":
        elements = st.floats(
            allow_nan=False, allow_infinity=False, width=8 * dtype.itemsize, allow_subnormal=False
        )
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    nested = draw(st.booleans())
    data = array.tolist() if nested else array.reshape(-1).tolist()
    return datatype, array, data


@SETTINGS
@given(tensors(), st.booleans())
def test_any_valid_oip_tensor_round_trips(tensor, use_orjson_style_separators):
    datatype, array, data = tensor
    body = {"inputs": [{"name": "x", "shape": list(array.shape), "datatype": datatype,
                        "data": data}]}  # fmt: skip
    separators = (",", ":") if use_orjson_style_separators else None
    value = json.dumps(body, separators=separators).encode()
    decoded = EventDecoder("oip-json", model_name="m").decode(RawRecord("t", 0, 0, 0, None, value))
    assert decoded.error is None, str(decoded.error)
    rows = 1 if array.ndim == 1 else array.shape[0]
    expected = array.reshape(rows, -1)
    got = np.stack([e.inputs for e in decoded.events])
    assert got.shape == expected.shape
    if DATATYPES[datatype].kind == "f":
        np.testing.assert_array_equal(got, expected.astype(np.float64))
    else:
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def check(decoded: Decoded) -> None:
    assert isinstance(decoded, Decoded)
    if decoded.error is not None:
        assert decoded.error.reason in DECODE_REASONS
        assert str(decoded.error)
    for event in decoded.events:
        assert event.inputs.ndim == 1 and event.inputs.size > 0
        assert event.outputs is None or event.outputs.ndim == 1


HEADER_SETS = st.sampled_from(
    [
        (),
        (("ce_id", b"r"), ("ce_type", REQUEST_TYPE.encode())),
        (("ce_id", b"r"), ("ce_type", RESPONSE_TYPE.encode())),
        (("ce_id", b"\xff"), ("ce_type", b"\xfe"), ("ce_time", b"\xff")),
        (("client-id", b"\x00\xff"), ("ce_time", b"2024-13-45T99:00:00Z")),
    ]
)


@SETTINGS
@given(st.binary(max_size=300), HEADER_SETS, st.sampled_from(FORMATS))
def test_arbitrary_bytes_never_raise(value, headers, fmt):
    decoder = EventDecoder(fmt, model_name="m", max_pending_joins=2)
    check(decoder.decode(RawRecord("t", 0, 0, None, None, value, headers)))
    decoder.expire()


KEYS = [
    "id", "model", "model_name", "model_version", "inputs", "outputs", "instances",
    "predictions", "label", "client_id", "timestamp", "parameters", "name", "shape",
    "datatype", "data", "client-id", "binary_data_size",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=4)
    | st.sampled_from(["FP32", "INT8", "UINT64", "BOOL", "BYTES", "FP16"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)
TENSOR = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["x", 3, None]),
        "shape": st.lists(st.integers(min_value=-1, max_value=4), max_size=3) | JSON,
        "datatype": st.sampled_from([*DATATYPES, "BYTES", "X"]) | JSON,
        "data": JSON | st.lists(st.floats() | st.integers(-300, 300), max_size=8),
    }
)
BODIES = st.dictionaries(
    st.sampled_from(KEYS), JSON | st.lists(TENSOR, min_size=1, max_size=2), max_size=6
)


@SETTINGS
@given(BODIES, HEADER_SETS, st.sampled_from(FORMATS))
def test_arbitrary_json_bodies_never_raise(body, headers, fmt):
    value = json.dumps(body).encode()  # NaN and Infinity literals included
    decoder = EventDecoder(fmt, model_name="m", expected_features=None)
    check(decoder.decode(RawRecord("t", 0, 0, 0, None, value, headers)))
    if headers:  # the other half of a join, whatever it holds
        kind = RESPONSE_TYPE if headers[1][1] == REQUEST_TYPE.encode() else REQUEST_TYPE
        partner = (("ce_id", b"r"), ("ce_type", kind.encode()))
        check(decoder.decode(RawRecord("t", 0, 1, 0, None, value, partner)))
