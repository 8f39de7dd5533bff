"""Open Inference Protocol (KServe V2, Triton, Seldon "V2") JSON request and response bodies.

A request ``{"id"?, "parameters"?, "inputs": [tensor, ...], "outputs"?}`` gives one event per
row of its batch (the first dimension of its tensors); the row is the concatenation of every
input, flattened. Outputs in the same body (some loggers combine request and response) fill the
events' outputs. A bare response carries no inputs, so on an ``oip-json`` topic it is an error.

Examples
--------
>>> from agent.codecs.common import CodecOptions
>>> from agent.events import RawRecord
>>> body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
...                     "data": [[1, 2], [3, 4]]}]}
>>> opts = CodecOptions("clf", None, None, "client-id")
>>> events = decode(body, RawRecord("t", 0, 5, 0, None, b"{}"), opts)
>>> [(e.id, e.inputs.tolist()) for e in events]
[('t-0-5:0', [1.0, 2.0]), ('t-0-5:1', [3.0, 4.0])]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from agent.codecs.common import (
    TEXT_TYPES,
    CodecOptions,
    build_events,
    check_features,
    client_id,
    record_id,
    text_field,
    timestamp,
)
from agent.codecs.tensors import batchable_data, parse_tensor, stack_rows
from agent.events import DecodeError, InferenceEvent, RawRecord

_BODY = "the OIP body's"


class OipMessage(NamedTuple):
    """The parts of an OIP body robustwatch uses; ``inputs``/``outputs`` are 2-D rows."""

    inputs: np.ndarray | None
    outputs: np.ndarray | None
    id: str | None
    model_name: str | None
    model_version: str | None
    client_id: str | None


def batch_data(body: object) -> list | None:
    """The data of a body's one input tensor that a batch may convert ahead (see
    `agent.codecs.tensors.batchable_data`), or None: the common request, one float tensor."""
    if type(body) is not dict:
        return None
    tensors = body.get("inputs")
    if type(tensors) is not list or len(tensors) != 1:
        return None
    return batchable_data(tensors[0])


def parse_request(
    body: dict, options: CodecOptions, inputs: np.ndarray | None = None
) -> OipMessage:
    """Decode an OIP request body (its inputs, and outputs if it carries them). ``inputs``
    is the data of its one input tensor already converted (`batch_data`), or None."""
    tensors = body["inputs"]
    if type(tensors) is not list or not tensors:
        raise DecodeError(
            "missing-field", "the OIP request's 'inputs' must be a non-empty list of tensors"
        )
    if len(tensors) == 1:
        inputs = parse_tensor(tensors[0], "OIP input", check_finite=True, converted=inputs).rows
    else:
        inputs = stack_rows(
            [parse_tensor(t, "OIP input", check_finite=True) for t in tensors], "OIP input"
        )
    if inputs.shape[1] == 0 or options.expected_features is not None:
        check_features(inputs, options, "the OIP request")
    outputs = None
    carried = body.get("outputs")
    if carried and type(carried) is list:
        # A plain request lists requested outputs without data; only tensors with data count.
        with_data = [t for t in carried if isinstance(t, dict) and "data" in t]
        if with_data:
            outputs = stack_rows(
                [parse_tensor(t, "OIP output", check_finite=False) for t in with_data],
                "OIP output",
                inputs.shape[0],
            )
            if outputs.shape[0] != inputs.shape[0]:
                raise DecodeError(
                    "bad-shape",
                    f"the OIP outputs hold {outputs.shape[0]} rows but the inputs hold "
                    f"{inputs.shape[0]}",
                )
    event_id, model, version = body.get("id"), body.get("model_name"), body.get("model_version")
    if type(event_id) not in TEXT_TYPES:
        event_id = text_field(body, "id", _BODY)
    if type(model) not in TEXT_TYPES:
        model = text_field(body, "model_name", _BODY)
    if type(version) not in TEXT_TYPES:
        version = text_field(body, "model_version", _BODY)
    parameters = body.get("parameters")
    client = _client(parameters) if parameters else None
    return OipMessage(inputs, outputs, event_id, model, version, client)


def decode(
    body: dict, record: RawRecord, options: CodecOptions, inputs: np.ndarray | None = None
) -> tuple[InferenceEvent, ...]:
    """Decode the OIP body of a record from an ``oip-json`` topic into events. ``inputs``,
    when given, is the data of its one input tensor already converted (`batch_data`, then
    `agent.codecs.arrays.flat_float_rows`, for a batch of records); every check runs as
    without it."""
    if "inputs" not in body:
        if "outputs" in body:
            raise DecodeError(
                "missing-field",
                "the OIP body has 'outputs' but no 'inputs': a response alone carries no inputs "
                "to monitor; log requests (or combined request and response bodies) to this "
                "topic, or use the kserve-cloudevents format, which joins responses to requests",
            )
        raise DecodeError("missing-field", "the OIP body has no 'inputs'")
    inputs, outputs, event_id, model, version, client = parse_request(body, options, inputs)
    headers = dict(record.headers)
    return build_events(
        event_id or record_id(record),
        model or options.model_name,
        version or options.model_version,
        timestamp(headers, record),
        inputs,
        outputs,
        None,
        client_id(headers, options, client),
        headers,
    )


def _client(parameters: object) -> str | None:
    if not isinstance(parameters, dict):
        return None
    what = "the OIP parameter"
    return text_field(parameters, "client_id", what) or text_field(parameters, "client-id", what)
