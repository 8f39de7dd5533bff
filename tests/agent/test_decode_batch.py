"""`EventDecoder.decode_batch` gives exactly what `EventDecoder.decode` gives, record by record."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.codecs import common
from agent.codecs.kserve import REQUEST_TYPE, RESPONSE_TYPE
from agent.events import FORMATS, Decoded, EventDecoder, InferenceEvent, RawRecord

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_BYTES = 400


# --- comparing results field by field ------------------------------------------------------


def assert_same_array(got: np.ndarray | None, want: np.ndarray | None) -> None:
    if want is None:
        assert got is None
        return
    assert isinstance(got, np.ndarray)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    assert got.tobytes() == want.tobytes()  # bit for bit: -0.0 and NaN payloads included
    assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f")
    assert got.flags.c_contiguous == want.flags.c_contiguous
    assert got.flags.writeable == want.flags.writeable


def assert_same_events(got: tuple, want: tuple) -> None:
    assert type(got) is tuple and len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert type(a) is InferenceEvent
        for field in dataclasses.fields(InferenceEvent):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if field.name in ("inputs", "outputs"):
                assert_same_array(x, y)
            else:
                assert type(x) is type(y) and x == y, field.name


def assert_same_error(got, want) -> None:
    if want is None:
        assert got is None
    else:
        assert (got.reason, got.detail) == (want.reason, want.detail)


def assert_same(got: list[Decoded], want: list[Decoded]) -> None:
    assert type(got) is list and len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert type(a) is Decoded
        assert a.held == b.held
        assert_same_error(a.error, b.error)
        assert_same_events(a.events, b.events)


def assert_same_joins(got: EventDecoder, want: EventDecoder, clock: list[float]) -> None:
    assert got.pending_joins == want.pending_joins
    assert got.held_offsets() == want.held_offsets()
    clock[0] += 1_000.0  # past every TTL: both give back all they hold, in the same order
    released, expected = got.expire(), want.expire()
    assert len(released) == len(expected)
    for a, b in zip(released, expected, strict=True):
        assert (a.record, a.incomplete) == (b.record, b.incomplete)
        assert_same_error(a.error, b.error)
        assert_same_events(a.events, b.events)


def decoders(fmt: str, **options) -> tuple[EventDecoder, EventDecoder, list[float]]:
    clock = [0.0]  # shared: both decoders see the same time

    def make() -> EventDecoder:
        return EventDecoder(
            fmt, model_name="m", clock=lambda: clock[0], join_ttl_seconds=10.0, **options
        )

    return make(), make(), clock


def check_batch(fmt: str, records: list[RawRecord], **options) -> list[Decoded]:
    batch, one_by_one, clock = decoders(fmt, **options)
    now = SimpleNamespace(time=lambda: 1234.5)  # records without a time get "now": one now
    with mock.patch.object(common, "time", now):
        got = batch.decode_batch(records)
        want = [one_by_one.decode(record) for record in records]
    assert_same(got, want)
    assert_same_joins(batch, one_by_one, clock)
    return got


# --- random mixes of good and bad records --------------------------------------------------


def mostly(good, *odd):
    """Values of ``good`` about three times in four, else of one of ``odd``."""
    return st.sampled_from([good, good, good, st.one_of(*odd)]).flatmap(lambda s: s)


EDGE_INTS = [
    0, 1, -1, 2**53 + 1, -(2**53) - 1, 2**62, 2**63 - 1, -(2**63), -(2**63) - 1, 2**63,
    2**64 - 1, 2**64, 10**30, -(10**30), 10**400,
]  # fmt: skip
GOOD = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000)
ODD = (
    st.sampled_from(EDGE_INTS)
    | st.booleans()
    | st.floats()
    | st.sampled_from([1e300, -0.0, math.nan, math.inf, -math.inf])
)
NOT_NUMBER = (
    st.none()
    | st.sampled_from(["1.5", "a", "", "NaN", "1e400"])
    | st.lists(GOOD, max_size=2)
    | st.just({"x": 1})
)
ELEMENT = mostly(GOOD, ODD, NOT_NUMBER)
ROW = st.lists(GOOD, min_size=3, max_size=3)  # one width: the batch path's common case
SPOILED_ROW = st.tuples(ROW, st.sampled_from(range(3)), ODD | NOT_NUMBER).map(
    lambda spoil: [*spoil[0][: spoil[1]], spoil[2], *spoil[0][spoil[1] + 1 :]]
)
INPUTS = mostly(
    ROW,
    SPOILED_ROW,
    SPOILED_ROW,
    st.lists(ELEMENT, min_size=3, max_size=3),
    st.lists(ELEMENT, max_size=4),
    st.lists(ROW, min_size=1, max_size=2),  # nested: one flattened row
    st.sampled_from([None, {}, "1,2,3", 3.0, [], [[]], [[1.0], [2.0, 3.0]]]),
)
TEXT = st.text(max_size=3)


FIELDS = {
    "model": mostly(TEXT, st.none(), st.integers(0, 9), st.booleans()),
    "model_version": mostly(TEXT, st.none(), st.integers(0, 9), st.floats(0, 1)),
    "outputs": mostly(st.lists(GOOD, max_size=3), GOOD, st.lists(ELEMENT, max_size=3), TEXT),
    "label": mostly(st.integers(0, 9), st.none(), st.booleans(), st.floats(0, 9), TEXT),
    "client_id": mostly(TEXT, st.none(), st.integers(0, 9), st.lists(TEXT, max_size=1)),
    "timestamp": mostly(st.floats(0, 2e9), st.floats(), st.integers(0, 2**40), st.booleans(), TEXT),
}
IDS = mostly(TEXT, st.integers(-5, 5), st.none(), st.booleans(), st.floats(0, 1))


def one_in(draw, n: int) -> bool:
    return draw(st.sampled_from(range(n))) == n - 1  # the first choice is drawn more often


@st.composite
def plain_bodies(draw) -> dict:
    body = {"id": draw(IDS), "inputs": draw(INPUTS)}
    for key, values in FIELDS.items():
        if one_in(draw, 4):
            body[key] = draw(values)
    if one_in(draw, 10):
        del body[draw(st.sampled_from(["id", "inputs"]))]
    return body


@st.composite
def tensors(draw) -> dict:
    width = draw(st.integers(1, 4))
    data = draw(
        mostly(
            st.lists(GOOD, min_size=width, max_size=width),
            st.lists(ELEMENT, max_size=4),
            st.lists(st.booleans(), min_size=width, max_size=width),  # numpy: a bool array
            st.lists(st.integers(-(2**17), 2**17), min_size=width, max_size=width),  # FP16 range
            st.lists(ROW, min_size=1, max_size=1),  # nested
        )
    )
    datatype = draw(
        mostly(
            st.sampled_from(["FP32", "FP64", "FP16"]), st.sampled_from(["INT8", "BOOL", "BYTES"])
        )
    )
    shape = draw(mostly(st.just([1, width]), st.just([width]), st.just([2, width // 2])))
    return {"name": "x", "shape": shape, "datatype": datatype, "data": data}


@st.composite
def oip_bodies(draw) -> dict:
    body = {"inputs": draw(st.lists(tensors(), min_size=1, max_size=2))}
    if draw(st.booleans()):
        body["id"] = draw(IDS)
    if one_in(draw, 4):
        body["outputs"] = draw(st.lists(tensors(), min_size=1, max_size=1))
    if one_in(draw, 6):
        del body["inputs"]
    return body


KSERVE_BODIES = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(ROW, min_size=1, max_size=2) | INPUTS}),
    st.fixed_dictionaries({"predictions": st.lists(st.integers(0, 9), min_size=1, max_size=2)}),
    oip_bodies(),
    st.fixed_dictionaries({"outputs": st.lists(tensors(), min_size=1, max_size=1)}),
)
CLOUD_EVENT = st.tuples(
    st.sampled_from([b"r1", b"r2", b"r3"]),
    st.sampled_from([REQUEST_TYPE.encode(), RESPONSE_TYPE.encode(), b"other"]),
).map(lambda pair: (("ce_id", pair[0]), ("ce_type", pair[1])))
HEADERS = st.sampled_from(
    [
        (),
        (("client-id", b"c1"),),
        (("client-id", b"\xff"), ("ce_time", b"2024-05-01T12:00:00Z")),
        (("ce_time", b"not a time"),),
    ]
)


def encode(body: dict, compact: bool) -> bytes:
    return json.dumps(body, separators=(",", ":") if compact else None).encode()  # NaN literals


@st.composite
def records(draw, offset: int) -> RawRecord:
    kind = draw(st.sampled_from(["plain"] * 6 + ["oip", "kserve", "junk"]))
    headers = draw(HEADERS)
    compact = draw(st.booleans())
    if kind == "plain":
        value = encode(draw(plain_bodies()), compact)
    elif kind == "oip":
        value = encode(draw(oip_bodies()), compact)
    elif kind == "kserve":
        value = encode(draw(KSERVE_BODIES), compact)
        headers = draw(CLOUD_EVENT) + headers
    else:
        value = draw(
            st.sampled_from([None, b"", b"[1, 2]", b"null", b'{"id": "a", "inputs": [1', b"\xff"])
            | st.binary(max_size=20)
            | st.builds(lambda b: encode(b, False) + b" " * MAX_BYTES, plain_bodies())
        )
    if value and one_in(draw, 10):
        value = value[: draw(st.integers(0, len(value)))]  # truncated, often invalid JSON
    timestamp_ms = draw(st.none() | st.integers(-5, 2**41))
    partition = draw(st.integers(0, 1))
    return RawRecord("t", partition, offset, timestamp_ms, None, value, headers)


@st.composite
def batches(draw) -> list[RawRecord]:
    size = draw(st.integers(0, 40))
    return [draw(records(offset)) for offset in range(size)]


@SETTINGS
@given(batches(), st.sampled_from([*FORMATS, "auto", "plain-json"]), st.sampled_from([None, 3]))
def test_a_batch_decodes_as_its_records_one_by_one(batch, fmt, expected_features):
    check_batch(fmt, batch, expected_features=expected_features, max_record_bytes=MAX_BYTES)


# --- chosen cases --------------------------------------------------------------------------


def plain(offset: int, body: object, headers=()) -> RawRecord:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawRecord("t", 0, offset, 1_000, None, value, headers)


def test_records_are_parsed_one_by_one_never_joined():
    # Joined, the two values would read as two valid objects: {"id":"a",...},{"id":"b",...}.
    first = plain(0, b'{"id":"a","inputs":[1]},{"id":"b","inputs":[2')
    second = plain(1, b"3]}")
    got = check_batch("plain-json", [first, second])
    assert [d.error.reason for d in got] == ["invalid-json", "invalid-json"]
    assert check_batch("auto", [first, second])[1].error.reason == "invalid-json"


@pytest.mark.parametrize(
    "odd",
    [True, False, 2**63, 2**64, -(2**63), 10**30, 10**400, 1e300, "1.5", None, [1.0]],
    ids=repr,
)
def test_values_numpy_reads_leniently_are_decoded_as_alone(odd):
    rows = [[0.5, 1.5, 2.5]] * 4 + [[0.5, odd, 2.5], [1, 2, 3], [True, False, True]]
    got = check_batch(
        "plain-json", [plain(i, {"id": str(i), "inputs": r}) for i, r in enumerate(rows)]
    )
    assert [d.error is None for d in got[:4]] == [True] * 4


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_record_fails_alone(literal):
    values = [b'{"id": "a", "inputs": [1, 2, %s]}' % literal.encode()] + [
        json.dumps({"id": str(i), "inputs": [1.0, 2.0, 3.0]}).encode() for i in range(3)
    ]
    got = check_batch("auto", [plain(i, v) for i, v in enumerate(values)])
    assert [d.error and d.error.reason for d in got] == ["non-finite", None, None, None]


def test_mixed_widths_formats_and_cloud_events_keep_their_order():
    request = (("ce_id", b"r1"), ("ce_type", REQUEST_TYPE.encode()))
    response = (("ce_id", b"r1"), ("ce_type", RESPONSE_TYPE.encode()))
    batch = [
        plain(0, {"id": "a", "inputs": [1.0, 2.0]}),
        plain(1, {"predictions": [1]}, response),
        plain(2, {"id": "b", "inputs": [1.0, 2.0, 3.0]}),
        plain(3, {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}),
        plain(4, {"instances": [[1.0, 2.0]]}, request),
        plain(5, b""),
    ]
    got = check_batch("auto", batch)
    assert [len(d.events) for d in got] == [1, 0, 1, 1, 1, 0]
    assert got[1].held and got[4].events[0].outputs.tolist() == [1.0]


def test_expected_features_and_every_plain_field():
    body = {"id": 7, "model": "clf", "model_version": "v2", "inputs": [1, 2, 3],
            "outputs": [0.1, 0.9], "label": 1, "client_id": "c9", "timestamp": 5.5}  # fmt: skip
    batch = [
        plain(0, body),
        plain(1, {**body, "inputs": [1.0, 2.0]}),
        plain(2, body, [("client-id", b"h")]),
    ]
    got = check_batch("plain-json", batch, expected_features=3)
    assert [d.error and d.error.reason for d in got] == [None, "bad-shape", None]
    assert got[2].events[0].client_id == "h"


def test_an_empty_batch():
    assert EventDecoder("auto", model_name="m").decode_batch([]) == []


def test_a_failure_of_the_batch_path_falls_back_to_one_by_one(caplog):
    batch = [plain(i, {"id": str(i), "inputs": [1.0, 2.0]}) for i in range(3)]
    decoder = EventDecoder("plain-json", model_name="m")
    decoder._float_rows = mock.Mock(side_effect=RuntimeError("bug"))
    got = decoder.decode_batch(batch)
    assert_same(got, [EventDecoder("plain-json", model_name="m").decode(r) for r in batch])
    assert "batch decoding failed" in caplog.text


def test_batch_rows_are_independent_writable_float64_rows():
    batch = [plain(i, {"id": str(i), "inputs": [float(i), 1.0]}) for i in range(3)]
    events = [d.events[0] for d in EventDecoder("plain-json", model_name="m").decode_batch(batch)]
    events[0].inputs[0] = 42.0
    assert [e.inputs.tolist() for e in events] == [[42.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    assert all(e.inputs.dtype == np.float64 and e.inputs.ndim == 1 for e in events)
