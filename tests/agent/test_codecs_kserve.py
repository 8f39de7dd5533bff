"""KServe payload-logger CloudEvents: V1 and V2 bodies, the join, its bounds and its offsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.codecs.kserve import REQUEST_TYPE, RESPONSE_TYPE
from agent.events import EventDecoder, RawRecord


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ce(kind, ce_id, body, *, offset, partition=0, topic="logs", extra=()):
    ce_type = REQUEST_TYPE if kind == "request" else RESPONSE_TYPE
    headers = (
        ("ce_id", ce_id.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_source", b"http://localhost:9081/"),
        ("ce_inferenceservicename", b"sklearn-iris"),
        ("ce_namespace", b"default"),
        ("ce_endpoint", b"default"),
        ("ce_component", b"predictor"),
        *extra,
    )
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawRecord(topic, partition, offset, 5_000, None, value, headers)


def decoder(fmt="kserve-cloudevents", **options):
    clock = FakeClock()
    options = {"join_ttl_seconds": 10.0, "clock": clock, **options}
    return EventDecoder(fmt, model_name="fallback", **options), clock


V1_REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
V1_RESPONSE = {"predictions": [1, 2]}
V2_REQUEST = {
    "id": "body-id",
    "parameters": {"client_id": "c-9"},
    "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}],
}
V2_RESPONSE = {
    "model_name": "sklearn-iris",
    "outputs": [{"name": "p", "shape": [2, 3], "datatype": "FP32", "data": [0.1] * 6}],
}


def test_request_first_then_response():
    dec, _ = decoder()
    held = dec.decode(ce("request", "r1", V1_REQUEST, offset=4))
    assert held.held and held.events == () and held.error is None
    assert dec.pending_joins == 1 and dec.held_offsets() == {("logs", 0): 4}
    joined = dec.decode(ce("response", "r1", V1_RESPONSE, offset=5))
    assert not joined.held and joined.error is None
    assert [e.id for e in joined.events] == ["r1:0", "r1:1"]
    assert [e.inputs.tolist() for e in joined.events] == V1_REQUEST["instances"]
    assert [e.outputs.tolist() for e in joined.events] == [[1.0], [2.0]]
    assert {e.model for e in joined.events} == {"sklearn-iris"}
    assert dec.pending_joins == 0 and dec.held_offsets() == {}


def test_response_first_then_request():
    dec, _ = decoder()
    assert dec.decode(ce("response", "r1", V2_RESPONSE, offset=9)).held
    assert dec.held_offsets() == {("logs", 0): 9}
    joined = dec.decode(ce("request", "r1", V2_REQUEST, offset=10))
    assert [e.id for e in joined.events] == ["r1:0", "r1:1"]
    assert [e.inputs.tolist() for e in joined.events] == [[1, 2], [3, 4]]
    assert joined.events[0].outputs.tolist() == pytest.approx([0.1] * 3)
    assert joined.events[0].client_id == "c-9"
    assert joined.events[0].headers["ce_namespace"] == b"default"
    assert dec.held_offsets() == {}


def test_a_one_dimensional_output_of_the_batch_size_is_one_value_per_row():
    response = {"outputs": [{"name": "y", "shape": [2], "datatype": "INT64", "data": [1, 0]}]}
    dec, _ = decoder()
    dec.decode(ce("response", "r1", response, offset=1))
    joined = dec.decode(ce("request", "r1", V2_REQUEST, offset=2))
    assert [e.outputs.tolist() for e in joined.events] == [[1], [0]]


def test_ce_time_is_the_timestamp():
    dec, _ = decoder()
    extra = (("ce_time", b"2024-05-01T12:00:00Z"),)
    dec.decode(ce("request", "r1", V1_REQUEST, offset=1, extra=extra))
    joined = dec.decode(ce("response", "r1", V1_RESPONSE, offset=2))
    assert joined.events[0].timestamp == 1714564800.0


def test_single_row_keeps_the_ce_id():
    dec, _ = decoder()
    dec.decode(ce("request", "r1", {"instances": [[1.0, 2.0]]}, offset=1))
    joined = dec.decode(ce("response", "r1", {"predictions": [[0.3, 0.7]]}, offset=2))
    assert [(e.id, e.outputs.tolist()) for e in joined.events] == [("r1", [0.3, 0.7])]


def test_rows_that_do_not_match_keep_the_inputs_and_report_bad_shape():
    dec, _ = decoder()
    dec.decode(ce("request", "r1", V1_REQUEST, offset=1))
    joined = dec.decode(ce("response", "r1", {"predictions": [1, 2, 3]}, offset=2))
    assert joined.error.reason == "bad-shape"
    assert "holds 3 rows but its request holds 2" in str(joined.error)
    assert [e.outputs for e in joined.events] == [None, None]


def test_ttl_expiry_releases_orphans():
    dec, clock = decoder()
    dec.decode(ce("request", "lonely-req", V1_REQUEST, offset=1))
    dec.decode(ce("response", "lonely-resp", V1_RESPONSE, offset=2, partition=1))
    clock.now += 10.0
    assert dec.expire() == []  # exactly the TTL is not past it
    clock.now += 0.001
    released = dec.expire()
    assert [r.record.offset for r in released] == [1, 2]
    request, response = released
    assert request.incomplete and request.error is None
    assert [e.outputs for e in request.events] == [None, None]
    assert [e.id for e in request.events] == ["lonely-req:0", "lonely-req:1"]
    assert response.events == () and response.error.reason == "orphan-response"
    assert "join_ttl_seconds=10" in str(response.error)
    assert dec.pending_joins == 0 and dec.held_offsets() == {} and dec.expire() == []


def test_expiry_is_oldest_first_and_stops_at_the_first_live_entry():
    dec, clock = decoder()
    dec.decode(ce("request", "a", V1_REQUEST, offset=1))
    clock.now += 6
    dec.decode(ce("request", "b", V1_REQUEST, offset=2))
    clock.now += 5
    assert [r.record.offset for r in dec.expire()] == [1]
    assert dec.pending_joins == 1 and dec.held_offsets() == {("logs", 0): 2}


def test_max_pending_evicts_the_oldest_and_expire_returns_it():
    dec, _ = decoder(max_pending_joins=2)
    dec.decode(ce("request", "a", V1_REQUEST, offset=1))
    dec.decode(ce("response", "b", V1_RESPONSE, offset=2))
    dec.decode(ce("request", "c", V1_REQUEST, offset=3))  # evicts "a"
    dec.decode(ce("request", "d", V1_REQUEST, offset=4))  # evicts "b"
    assert dec.pending_joins == 2
    # evicted records stay held until expire() hands them back
    assert dec.held_offsets() == {("logs", 0): 1}
    released = dec.expire()
    assert [r.record.offset for r in released] == [1, 2]
    assert released[0].events and released[0].error is None
    assert released[1].error.reason == "orphan-response"
    assert "evicted: max_pending_joins=2" in str(released[1].error)
    assert dec.held_offsets() == {("logs", 0): 3}
    # an evicted partner no longer joins: the late response is held as a new entry
    assert dec.decode(ce("response", "a", V1_RESPONSE, offset=5)).held


def test_held_offsets_report_the_smallest_per_partition():
    dec, _ = decoder()
    for ce_id, offset, partition, topic in [
        ("a", 30, 0, "logs"),
        ("b", 12, 0, "logs"),
        ("c", 50, 0, "logs"),
        ("d", 7, 1, "logs"),
        ("e", 3, 0, "other"),
    ]:
        dec.decode(
            ce("request", ce_id, V1_REQUEST, offset=offset, partition=partition, topic=topic)
        )
    assert dec.held_offsets() == {("logs", 0): 12, ("logs", 1): 7, ("other", 0): 3}
    dec.decode(ce("response", "b", V1_RESPONSE, offset=60))
    assert dec.held_offsets() == {("logs", 0): 30, ("logs", 1): 7, ("other", 0): 3}


def test_a_redelivered_record_replaces_its_twin():
    dec, _ = decoder()
    dec.decode(ce("request", "a", V1_REQUEST, offset=5))
    dec.decode(ce("request", "a", V1_REQUEST, offset=8))
    assert dec.pending_joins == 1 and dec.held_offsets() == {("logs", 0): 8}


def test_forget_partitions_drops_held_and_evicted_records():
    dec, _ = decoder(max_pending_joins=2)
    dec.decode(ce("request", "a", V1_REQUEST, offset=1, partition=0))
    dec.decode(ce("request", "b", V1_REQUEST, offset=2, partition=1))
    dec.decode(ce("request", "c", V1_REQUEST, offset=3, partition=1))  # evicts "a"
    dec.forget_partitions([("logs", 0)])
    assert dec.held_offsets() == {("logs", 1): 2}
    dec.forget_partitions([("logs", 1), ("never", 9)])
    assert dec.pending_joins == 0 and dec.held_offsets() == {} and dec.expire() == []
    # a response for a forgotten request waits for the new owner's copy, as a new entry
    assert dec.decode(ce("response", "b", V1_RESPONSE, offset=4)).held


@pytest.mark.parametrize(
    ("headers", "reason", "words"),
    [
        ((("ce_type", REQUEST_TYPE.encode()),), "missing-field", "no ce_id header"),
        ((("ce_id", b"r1"),), "missing-field", "has no ce_type header"),
        ((("ce_id", b"r1"), ("ce_type", b"com.example.other")), "unknown-format", "expected"),
        ((), "missing-field", "binary-mode CloudEvents"),
    ],
)
def test_bad_cloudevent_headers(headers, reason, words):
    dec, _ = decoder()
    rec = RawRecord("logs", 0, 1, None, None, json.dumps(V1_REQUEST).encode(), headers)
    decoded = dec.decode(rec)
    assert decoded.error.reason == reason and words in str(decoded.error)
    assert dec.pending_joins == 0


@pytest.mark.parametrize(
    ("kind", "body", "reason", "words"),
    [
        ("request", {"foo": 1}, "missing-field", "neither 'inputs' (V2) nor 'instances' (V1)"),
        ("response", {"foo": 1}, "missing-field", "neither 'outputs' (V2) nor 'predictions'"),
        ("response", {"outputs": []}, "missing-field", "non-empty list"),
        ("request", {"instances": [[1, 2], [3]]}, "bad-shape", "ragged"),
        ("request", {"instances": []}, "bad-shape", "holds no rows"),
        ("request", {"instances": [{"a": 1}]}, "bad-dtype", "holds {'a': 1}"),
        ("request", b'{"instances": [[1, NaN]]}', "non-finite", "flat index 1"),
        ("response", {"predictions": ["cat"]}, "bad-dtype", "holds 'cat'"),
        ("request", b"not json", "invalid-json", "not valid JSON"),
    ],
)
def test_bad_bodies_are_reported_and_not_held(kind, body, reason, words):
    dec, _ = decoder()
    decoded = dec.decode(ce(kind, "r1", body, offset=1))
    assert decoded.error.reason == reason, str(decoded.error)
    assert words in str(decoded.error) and not decoded.held
    assert dec.pending_joins == 0


def test_expected_features_applies_to_v1_instances():
    dec, _ = decoder(expected_features=3)
    decoded = dec.decode(ce("request", "r1", V1_REQUEST, offset=1))
    assert decoded.error.reason == "bad-shape" and "expected_features is 3" in str(decoded.error)


def test_auto_reads_cloudevents_and_joins():
    dec, _ = decoder("auto")
    assert dec.decode(ce("request", "r1", V1_REQUEST, offset=1)).held
    joined = dec.decode(ce("response", "r1", V1_RESPONSE, offset=2))
    assert len(joined.events) == 2 and joined.events[1].outputs.tolist() == [2.0]


def test_outputs_keep_their_declared_integer_dtype():
    response = {"outputs": [{"name": "y", "shape": [2, 1], "datatype": "INT32", "data": [1, 0]}]}
    dec, _ = decoder()
    dec.decode(ce("request", "r1", V2_REQUEST, offset=1))
    joined = dec.decode(ce("response", "r1", response, offset=2))
    assert joined.events[0].outputs.dtype == np.int32
