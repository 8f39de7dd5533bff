"""The event types and the `EventDecoder` facade: limits, sniffing, ids, client ids, times."""

from __future__ import annotations

import dataclasses
import json
import pickle
import time

import numpy as np
import pytest

from agent.events import (
    DECODE_REASONS,
    Decoded,
    DecodeError,
    EventDecoder,
    InferenceEvent,
    RawRecord,
)


def record(body: object, *, offset: int = 0, headers=(), timestamp_ms: int | None = 1_000):
    value = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    return RawRecord("traffic", 3, offset, timestamp_ms, None, value, tuple(headers))


def oip_body(data, shape=None, datatype="FP32", **extra):
    shape = [1, len(data)] if shape is None else shape
    tensor = {"name": "x", "shape": shape, "datatype": datatype, "data": data}
    return {"inputs": [tensor], **extra}


def decode(body, fmt="auto", headers=(), **options):
    return EventDecoder(fmt, model_name="clf", **options).decode(record(body, headers=headers))


# --- the types ---------------------------------------------------------------------------


def test_types_are_frozen():
    rec = record({"id": "a", "inputs": [1]})
    event = decode({"id": "a", "inputs": [1]}).events[0]
    for obj, field in [(rec, "offset"), (event, "id"), (Decoded(()), "held")]:
        with pytest.raises(AttributeError):  # FrozenInstanceError, or a named tuple's field
            setattr(obj, field, None)


def test_fast_constructed_event_equals_a_normal_one():
    event = decode({"id": "a", "inputs": [1, 2]}, headers=[("client-id", b"c")]).events[0]
    twin = InferenceEvent(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
    assert repr(twin) == repr(event)
    assert isinstance(event, InferenceEvent)


def test_decode_error_carries_reason_and_detail():
    err = DecodeError("bad-shape", "too short")
    assert (err.reason, err.detail, str(err)) == ("bad-shape", "too short", "too short")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, str(again)) == ("bad-shape", "too short")


def test_decode_error_rejects_an_unknown_reason():
    with pytest.raises(ValueError, match="unknown decode reason"):
        DecodeError("oops", "detail")


def test_reasons_are_the_documented_set():
    assert set(DECODE_REASONS) == {
        "oversized",
        "empty",
        "invalid-json",
        "unknown-format",
        "missing-field",
        "bad-dtype",
        "bad-shape",
        "non-finite",
        "orphan-response",
        "decoder-failure",
    }


# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"fmt": "xml"}, "fmt"),
        ({"model_name": ""}, "model_name"),
        ({"model_version": 3}, "model_version"),
        ({"max_record_bytes": 0}, "max_record_bytes"),
        ({"expected_features": -1}, "expected_features"),
        ({"expected_features": True}, "expected_features"),
        ({"client_id_header": ""}, "client_id_header"),
        ({"join_ttl_seconds": float("inf")}, "join_ttl_seconds"),
        ({"join_ttl_seconds": 0}, "join_ttl_seconds"),
        ({"max_pending_joins": 0}, "max_pending_joins"),
        ({"clock": 1.0}, "clock"),
    ],
)
def test_bad_parameters_fail_at_construction(options, name):
    args = {"fmt": "auto", "model_name": "clf", **options}
    with pytest.raises(ValueError, match=f"The '{name}' parameter of EventDecoder must be"):
        EventDecoder(args.pop("fmt"), **args)


# --- limits and JSON ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["auto", "oip-json", "kserve-cloudevents", "plain-json"])
@pytest.mark.parametrize("value", [None, b""])
def test_empty_value(fmt, value):
    decoded = decode(value, fmt)
    assert decoded.error.reason == "empty" and decoded.events == () and not decoded.held


@pytest.mark.parametrize("fmt", ["auto", "oip-json", "kserve-cloudevents", "plain-json"])
def test_oversized_is_checked_before_parsing(fmt):
    decoded = decode(b"not json at all" * 10, fmt, max_record_bytes=100)
    assert decoded.error.reason == "oversized"
    assert "150 bytes, over max_record_bytes=100" in str(decoded.error)


def test_a_record_at_the_limit_is_decoded():
    body = json.dumps({"id": "a", "inputs": [1.0]}).encode()
    assert decode(body, max_record_bytes=len(body)).error is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON an array, not a JSON object"),
        (b'"text"', "JSON a string"),
        (b"12", "JSON a number"),
        (b"null", "JSON null"),
        (b'{"id": "a"} trailing', "not valid JSON"),
    ],
)
@pytest.mark.parametrize("fmt", ["auto", "oip-json", "plain-json"])
def test_invalid_json(value, words, fmt):
    decoded = decode(value, fmt)
    assert decoded.error.reason == "invalid-json"
    assert words in str(decoded.error)


# --- auto sniffing -------------------------------------------------------------------------


def test_auto_sniffs_plain():
    event = decode({"id": "p", "inputs": [[1, 2], [3, 4]]}).events[0]
    assert event.inputs.tolist() == [1, 2, 3, 4]


def test_auto_sniffs_oip():
    decoded = decode(oip_body([1, 2, 3]))
    assert decoded.events[0].inputs.tolist() == [1, 2, 3]


def test_auto_sends_a_bare_oip_response_to_the_oip_codec_for_its_message():
    body = {"model_name": "clf", "outputs": [{"name": "y", "shape": [1], "datatype": "FP32",
                                              "data": [1]}]}  # fmt: skip
    decoded = decode(body)
    assert decoded.error.reason == "missing-field"
    assert "kserve-cloudevents" in str(decoded.error)


def test_auto_sniffs_cloudevents_from_headers():
    headers = [("ce_id", b"r1"), ("ce_type", b"org.kubeflow.serving.inference.request")]
    decoded = decode({"instances": [[1, 2]]}, headers=headers)
    assert decoded.held and decoded.error is None


@pytest.mark.parametrize(
    "body",
    [{"id": "a"}, {"inputs": "abc"}, {"inputs": [{"name": "x"}]}, {"instances": [[1]]}],
)
def test_auto_unknown_format(body):
    decoded = decode(body)
    assert decoded.error.reason == "unknown-format"
    assert "set the topic's format explicitly" in str(decoded.error)


def test_auto_hints_that_v1_bodies_need_cloudevent_headers():
    assert "CloudEvent headers" in str(decode({"instances": [[1.0]]}).error)


# --- ids, models, timestamps, client ids ----------------------------------------------------


def test_ids_are_deterministic_from_the_record_position():
    dec = EventDecoder("oip-json", model_name="clf")
    first = dec.decode(record(oip_body([1, 2, 3, 4], shape=[2, 2]), offset=17))
    again = dec.decode(record(oip_body([1, 2, 3, 4], shape=[2, 2]), offset=17))
    assert [e.id for e in first.events] == ["traffic-3-17:0", "traffic-3-17:1"]
    assert [e.id for e in again.events] == [e.id for e in first.events]


def test_body_id_wins_and_rows_are_suffixed():
    decoded = decode(oip_body([1, 2, 3, 4], shape=[2, 2], id="req-9"))
    assert [e.id for e in decoded.events] == ["req-9:0", "req-9:1"]
    assert decode(oip_body([1, 2], id="req-9")).events[0].id == "req-9"


def test_integer_ids_become_text():
    assert decode({"id": 12, "inputs": [1]}).events[0].id == "12"


def test_model_from_the_body_else_the_decoder():
    assert decode(oip_body([1.0], model_name="other")).events[0].model == "other"
    event = decode(oip_body([1.0]), model_version="v3").events[0]
    assert (event.model, event.model_version) == ("clf", "v3")


@pytest.mark.parametrize(
    ("headers", "ts_ms", "expected"),
    [
        ([("ce_time", b"2024-05-01T12:00:00Z")], 5_000, 1714564800.0),
        ([("ce_time", b"2024-05-01T14:00:00.5+02:00")], 5_000, 1714564800.5),
        ([("ce_time", b"2024-05-01T12:00:00.123456789Z")], None, 1714564800.123456),
        ([("ce_time", b"2024-05-01T12:00:00")], None, 1714564800.0),
        ([("ce_time", b"yesterday")], 5_000, 5.0),
        ([], 5_000, 5.0),
    ],
)
def test_timestamp_sources(headers, ts_ms, expected):
    rec = RawRecord("t", 0, 0, ts_ms, None, json.dumps(oip_body([1.0])).encode(), tuple(headers))
    event = EventDecoder("oip-json", model_name="m").decode(rec).events[0]
    assert event.timestamp == pytest.approx(expected)


@pytest.mark.parametrize("ts_ms", [None, -1])
def test_timestamp_falls_back_to_now(ts_ms):
    rec = RawRecord("t", 0, 0, ts_ms, None, json.dumps(oip_body([1.0])).encode())
    event = EventDecoder("oip-json", model_name="m").decode(rec).events[0]
    assert abs(event.timestamp - time.time()) < 60


def test_plain_body_timestamp_wins():
    headers = [("ce_time", b"2024-05-01T12:00:00Z")]
    event = decode({"id": "a", "inputs": [1], "timestamp": 12.5}, headers=headers).events[0]
    assert event.timestamp == 12.5


def test_client_id_from_header_then_body():
    body = oip_body([1.0], parameters={"client_id": "from-body"})
    assert decode(body).events[0].client_id == "from-body"
    assert decode(body, headers=[("client-id", b"hdr")]).events[0].client_id == "hdr"
    dashed = oip_body([1.0], parameters={"client-id": "dashed"})
    assert decode(dashed).events[0].client_id == "dashed"
    custom = decode(body, headers=[("x-user", b"u7")], client_id_header="x-user").events[0]
    assert custom.client_id == "u7"
    assert decode(oip_body([1.0])).events[0].client_id is None
    plain = {"id": "a", "inputs": [1], "client_id": "p"}
    assert decode(plain).events[0].client_id == "p"
    assert decode(plain, headers=[("client-id", b"h")]).events[0].client_id == "h"


def test_headers_are_kept_for_provenance():
    event = decode(oip_body([1.0]), headers=[("a", b"1"), ("b", b"2")]).events[0]
    assert event.headers == {"a": b"1", "b": b"2"}


# --- expected features and finiteness, across formats ---------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"id": "a", "inputs": [1, 2, 3]}, oip_body([1, 2, 3])],
)
def test_expected_features(body):
    ok = decode(body, expected_features=3)
    assert ok.error is None
    decoded = decode(body, expected_features=4)
    assert decoded.error.reason == "bad-shape"
    assert "3 features per row but expected_features is 4" in str(decoded.error)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("fmt", ["plain-json", "oip-json"])
def test_non_finite_inputs(literal, fmt):
    if fmt == "plain-json":
        value = f'{{"id": "a", "inputs": [1.0, {literal}]}}'
    else:
        value = (
            '{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", '
            f'"data": [1.0, {literal}]}}]}}'
        )
    decoded = EventDecoder(fmt, model_name="m").decode(record(value.encode()))
    assert decoded.error.reason == "non-finite"
    assert "flat index 1" in str(decoded.error)


def test_non_finite_outputs_are_kept():
    value = b'{"id": "a", "inputs": [1.0], "outputs": [NaN]}'
    event = decode(value).events[0]
    assert np.isnan(event.outputs[0])


def test_repr():
    assert repr(EventDecoder("auto", model_name="m")) == "EventDecoder('auto', model_name='m')"
