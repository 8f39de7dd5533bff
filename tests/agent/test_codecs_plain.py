"""The plain JSON codec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.events import EventDecoder, RawRecord


def decode(body, **options):
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    decoder = EventDecoder("plain-json", model_name="clf", **options)
    return decoder.decode(RawRecord("plain", 0, 11, 3_000, None, value))


def test_every_field():
    body = {
        "id": "e-1",
        "model": "resnet",
        "model_version": "4",
        "inputs": [0.5, 1, 2.5],
        "outputs": [0.1, 0.9],
        "label": 1,
        "client_id": "c-1",
        "timestamp": 1_700_000_000,
    }
    (event,) = decode(body).events
    assert (event.id, event.model, event.model_version, event.label, event.client_id) == (
        "e-1",
        "resnet",
        "4",
        1,
        "c-1",
    )
    assert event.inputs.dtype == np.float64 and event.inputs.tolist() == [0.5, 1.0, 2.5]
    assert event.outputs.tolist() == [0.1, 0.9]
    assert event.timestamp == 1_700_000_000.0
    assert event.headers == {}


def test_defaults():
    (event,) = decode({"id": "e", "inputs": [1]}, model_version="v1").events
    assert (event.model, event.model_version, event.outputs, event.label) == (
        "clf",
        "v1",
        None,
        None,
    )
    assert event.timestamp == 3.0


def test_nested_inputs_are_one_flattened_row():
    (event,) = decode({"id": "e", "inputs": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}).events
    assert event.inputs.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_scalar_output_is_a_class_index():
    assert decode({"id": "e", "inputs": [1], "outputs": 3}).events[0].outputs.tolist() == [3.0]


def test_boolean_features_become_numbers():
    assert decode({"id": "e", "inputs": [True, False]}).events[0].inputs.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        ({"inputs": [1]}, "missing-field", "no 'id'"),
        ({"id": "e"}, "missing-field", "no 'inputs'"),
        ({"id": "e", "inputs": None}, "missing-field", "no 'inputs'"),
        ({"id": "e", "inputs": 3}, "bad-shape", "must be a list"),
        ({"id": "e", "inputs": []}, "bad-shape", "carries no features"),
        ({"id": "e", "inputs": [[1, 2], [3]]}, "bad-shape", "ragged"),
        ({"id": "e", "inputs": [1, "2"]}, "bad-dtype", "holds '2' at flat index 1"),
        ({"id": "e", "inputs": [1, None]}, "bad-dtype", "holds None at flat index 1"),
        ({"id": "e", "inputs": [1], "outputs": ["x"]}, "bad-dtype", "'outputs' holds 'x'"),
        ({"id": "e", "inputs": [1], "label": 1.0}, "bad-dtype", "integer class index"),
        ({"id": "e", "inputs": [1], "label": "cat"}, "bad-dtype", "integer class index"),
        ({"id": "e", "inputs": [1], "label": True}, "bad-dtype", "integer class index"),
        ({"id": "e", "inputs": [1], "timestamp": "now"}, "bad-dtype", "seconds since"),
        ({"id": ["e"], "inputs": [1]}, "bad-dtype", "'id' must be a string"),
        ({"id": "e", "inputs": [1], "model": 5.5}, "bad-dtype", "'model' must be a string"),
        ({"id": "e", "inputs": [1], "client_id": {}}, "bad-dtype", "'client_id' must be"),
    ],
)
def test_errors(body, reason, words):
    decoded = decode(body)
    assert decoded.error.reason == reason, str(decoded.error)
    assert words in str(decoded.error)
    assert decoded.events == ()


def test_non_finite_inputs_name_the_index():
    decoded = decode(b'{"id": "e", "inputs": [[1.0, 2.0], [-Infinity, 4.0]]}')
    assert decoded.error.reason == "non-finite"
    assert "holds -inf at flat index 2" in str(decoded.error)
