"""The plain JSON form: one event per record.

``{"id", "model"?, "model_version"?, "inputs": [...], "outputs"?: [...], "label"?: int,
"client_id"?, "timestamp"?: seconds}``; nested ``inputs`` and ``outputs`` are flattened into one
row, and a scalar output (a class index) becomes an output of length 1.

Examples
--------
>>> from agent.codecs.common import CodecOptions
>>> from agent.events import RawRecord
>>> body = {"id": "r1", "inputs": [[0.5, 1], [2, 3]], "outputs": 3, "label": 3,
...         "timestamp": 1700000000.5}
>>> (event,) = decode(body, RawRecord("t", 0, 1, None, None, b"{}"),
...                   CodecOptions("clf", "v2", None, "client-id"))
>>> event.inputs.tolist(), event.outputs.tolist(), event.label, event.model_version
([0.5, 1.0, 2.0, 3.0], [3.0], 3, 'v2')
>>> event.timestamp
1700000000.5
"""

from __future__ import annotations

import math

import numpy as np

from agent.codecs.arrays import numeric_rows
from agent.codecs.common import (
    TEXT_TYPES,
    CodecOptions,
    check_features,
    client_id,
    new_event,
    text_field,
    timestamp,
)
from agent.events import DecodeError, InferenceEvent, RawRecord

_FIELD = "the plain JSON field"


def decode(
    body: dict, record: RawRecord, options: CodecOptions, inputs: np.ndarray | None = None
) -> tuple[InferenceEvent, ...]:
    """Decode a plain JSON body into its one event.

    ``inputs``, when given, is ``body["inputs"]`` already converted, as `numeric_rows` would
    (`flat_float_rows` converts a batch's at once); every check runs as without it.
    """
    event_id, model, version = body.get("id"), body.get("model"), body.get("model_version")
    if type(event_id) is not str:
        event_id = text_field(body, "id", _FIELD)
        if event_id is None:
            raise DecodeError(
                "missing-field", "the plain JSON record has no 'id'; every event needs one"
            )
    if type(model) not in TEXT_TYPES:
        model = text_field(body, "model", _FIELD)
    if type(version) not in TEXT_TYPES:
        version = text_field(body, "model_version", _FIELD)
    raw_inputs = body.get("inputs")
    if type(raw_inputs) is not list:
        if raw_inputs is None:
            raise DecodeError("missing-field", "the plain JSON record has no 'inputs'")
        raise DecodeError("bad-shape", "the plain JSON 'inputs' must be a list of numbers")
    if inputs is None:
        inputs = numeric_rows(raw_inputs, "the plain JSON 'inputs'", rows=False)
    if inputs.size == 0 or options.expected_features is not None:
        check_features(inputs, options, "the plain JSON record")
    raw_outputs = body.get("outputs")
    outputs = None
    if raw_outputs is not None:
        outputs = numeric_rows(
            raw_outputs, "the plain JSON 'outputs'", rows=False, check_finite=False
        )
    label = body.get("label")
    if label is not None and type(label) is not int:
        raise DecodeError(
            "bad-dtype", f"the plain JSON 'label' must be an integer class index, got {label!r:.40}"
        )
    client = body.get("client_id")
    if type(client) not in TEXT_TYPES:
        client = text_field(body, "client_id", _FIELD)
    headers = dict(record.headers) if record.headers else {}  # {} is the cheaper empty dict
    when = body.get("timestamp")
    event = new_event(
        event_id,
        model or options.model_name,
        version or options.model_version,
        timestamp(headers, record) if when is None else _seconds(when),
        inputs,
        outputs,
        label,
        client_id(headers, options, client) if headers else client,
        headers,
    )
    return (event,)


def _seconds(when: object) -> float:
    if isinstance(when, int | float) and not isinstance(when, bool) and math.isfinite(when):
        return float(when)
    raise DecodeError(
        "bad-dtype", f"the plain JSON 'timestamp' must be seconds since the epoch, got {when!r:.40}"
    )
