"""The Open Inference Protocol codec: datatypes, shapes, batches, several inputs, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.events import EventDecoder, RawRecord


def tensor(data, shape, datatype="FP32", name="x", **extra):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data, **extra}


def decode(body, **options):
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    decoder = EventDecoder("oip-json", model_name="clf", **options)
    return decoder.decode(RawRecord("oip", 1, 40, 2_000, None, value))


def events(body, **options):
    decoded = decode(body, **options)
    assert decoded.error is None, decoded.error
    return decoded.events


def error(body, reason, **options):
    decoded = decode(body, **options)
    assert decoded.error is not None, "expected an error"
    assert decoded.error.reason == reason, str(decoded.error)
    assert decoded.events == ()
    return str(decoded.error)


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("FP16", [0.5, -2.0], np.float64),
        ("FP32", [0.5, -2.0], np.float64),
        ("FP64", [0.5, -2.0], np.float64),
        ("FP32", [1, 2], np.float64),
        ("INT8", [-128, 127], np.int8),
        ("INT16", [-32768, 32767], np.int16),
        ("INT32", [-(2**31), 2**31 - 1], np.int32),
        ("INT64", [-(2**63), 2**63 - 1], np.int64),
        ("UINT8", [0, 255], np.uint8),
        ("UINT16", [0, 65535], np.uint16),
        ("UINT32", [0, 2**32 - 1], np.uint32),
        ("UINT64", [0, 2**64 - 1], np.uint64),
        ("UINT64", [2**64 - 1, 2**63 + 1], np.uint64),
        ("INT64", [2.0, 2**62 + 1], np.int64),
        ("INT32", [3.0, -4.0], np.int32),
        ("BOOL", [True, False], np.bool_),
        ("BOOL", [1, 0], np.bool_),
    ],
)
def test_datatypes(datatype, data, dtype):
    (event,) = events({"inputs": [tensor(data, [2], datatype)]})
    assert event.inputs.dtype == dtype
    assert event.inputs.tolist() == [dtype(v).item() for v in data]


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("FP32", [1.0, "2.0"], "holds '2.0' at flat index 1; FP32 data must be numbers"),
        ("FP32", [1.0, None], "holds None at flat index 1"),
        ("FP32", [True, False], "holds booleans"),
        ("FP32", [1.0, {"a": 1}], "holds {'a': 1} at flat index 1"),
        ("FP32", [1e39, 1.0], "beyond the FP32 range"),
        ("FP16", [70000.0, 1.0], "beyond the FP16 range"),
        ("FP16", [70000, 1], "beyond the FP16 range"),
        ("INT32", [1, 2.5], "holds 2.5 at flat index 1; INT32 data must be integers"),
        ("INT8", [1, 128], "holds 128, out of the INT8 range [-128, 127]"),
        ("INT8", [-129, 1], "holds -129, out of the INT8 range"),
        ("INT8", [1.0, 300.0], "out of the INT8 range"),
        ("UINT8", [-1, 1], "holds -1, out of the UINT8 range [0, 255]"),
        ("INT64", [2**63, 1], "out of the INT64 range"),
        ("UINT64", [2**64, 1], "an integer too large for 64 bits"),
        ("UINT64", [-1, 2**63], "holds -1, out of the UINT64 range"),
        ("INT64", [-1, 2**63], "holds 9223372036854775808, out of the INT64 range"),
        ("INT32", [True, False], "holds booleans"),
        ("BOOL", [0.5, 1.0], "true/false"),
        ("BOOL", [2, 0], "true/false"),
        ("FP32", ["a", "b"], "holds 'a' at flat index 0"),
    ],
)
def test_bad_values_are_bad_dtype(datatype, data, words):
    assert words in error({"inputs": [tensor(data, [2], datatype)]}, "bad-dtype")


def test_bytes_tensors_are_not_supported():
    message = error({"inputs": [tensor(["abc"], [1], "BYTES")]}, "bad-dtype")
    assert "byte tensors are not supported" in message


def test_unknown_datatype_lists_the_known_ones():
    message = error({"inputs": [tensor([1], [1], "FLOAT")]}, "bad-dtype")
    assert "'FLOAT'" in message and "FP32" in message and "UINT64" in message


def test_non_finite_in_an_integer_input():
    value = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, NaN]}]}'
    assert "flat index 1" in error(value, "non-finite")


@pytest.mark.parametrize(
    "data", [[1, 2, 3, 4, 5, 6], [[1, 2, 3], [4, 5, 6]], [[[1], [2], [3]], [[4], [5], [6]]]]
)
def test_flat_and_nested_data_give_the_same_rows(data):
    rows = [e.inputs.tolist() for e in events({"inputs": [tensor(data, [2, 3])]})]
    assert rows == [[1, 2, 3], [4, 5, 6]]


def test_declared_shape_is_honoured_over_the_nesting():
    rows = [e.inputs.tolist() for e in events({"inputs": [tensor([[1, 2], [3, 4]], [4])]})]
    assert rows == [[1, 2, 3, 4]]


def test_batch_of_images_gives_one_flattened_row_each():
    data = np.arange(2 * 3 * 2 * 2).tolist()
    batch = events({"inputs": [tensor(data, [2, 3, 2, 2])]})
    assert [e.id for e in batch] == ["oip-1-40:0", "oip-1-40:1"]
    assert [e.inputs.tolist() for e in batch] == [data[:12], data[12:]]


def test_size_mismatch_names_both_counts():
    message = error({"inputs": [tensor([0.0] * 31, [1, 32])]}, "bad-shape")
    assert message == "OIP input 'x' declares shape [1, 32] (32 values) but carries 31 values"


@pytest.mark.parametrize(
    ("shape", "data", "words"),
    [
        ([2, -1], [1, 2], "a shape is a list of integers >= 0"),
        ("2", [1, 2], "a shape is a list"),
        ([2.0], [1, 2], "a shape is a list"),
        ([True], [1], "a shape is a list"),
        ([0, 3], [], "holds no values"),
        ([2, 0], [], "holds no values"),
        ([2, 2], [[1, 2], [3]], "ragged"),
    ],
)
def test_bad_shapes(shape, data, words):
    assert words in error({"inputs": [tensor(data, shape)]}, "bad-shape")


def test_a_scalar_shape_is_one_value():
    (event,) = events({"inputs": [tensor(5, [])]})
    assert event.inputs.tolist() == [5.0]


def test_several_inputs_are_concatenated_in_order():
    body = {
        "inputs": [
            tensor([[1, 2], [3, 4]], [2, 2], "FP32", name="a"),
            tensor([[10], [20]], [2, 1], "INT64", name="b"),
        ]
    }
    rows = events(body)
    assert [e.inputs.tolist() for e in rows] == [[1, 2, 10], [3, 4, 20]]
    assert rows[0].inputs.dtype == np.float64


def test_several_inputs_must_share_the_batch():
    body = {"inputs": [tensor([1, 2, 3, 4], [2, 2], name="a"), tensor([1, 2, 3], [3, 1], name="b")]}
    message = error(body, "bad-shape")
    assert "OIP input 'b' has a batch of 3 rows where 2 were expected" in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"outputs": [tensor([1], [1])]}, "a response alone carries no inputs"),
        ({"id": "a"}, "has no 'inputs'"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": {"x": 1}}, "non-empty list"),
        ({"inputs": [[1, 2]]}, "must be an object with 'name', 'shape', 'datatype' and 'data'"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, "has no 'datatype'"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "has no 'data'"),
        (
            {"inputs": [tensor(None, [1], parameters={"binary_data_size": 4})]},
            "",
        ),
    ],
)
def test_missing_fields(body, words):
    if words == "":  # binary data: the tensor has no "data" key at all
        del body["inputs"][0]["data"]
        words = "binary tensor extension"
    assert words in error(body, "missing-field")


def test_bare_response_message_points_to_kserve_cloudevents():
    message = error({"model_name": "m", "outputs": [tensor([1], [1])]}, "missing-field")
    assert "kserve-cloudevents" in message and "joins responses to requests" in message


def test_combined_request_and_response():
    body = {
        "id": "r1",
        "model_name": "resnet",
        "model_version": "7",
        "inputs": [tensor([1, 2, 3, 4], [2, 2])],
        "outputs": [
            tensor([[0.1, 0.9], [0.8, 0.2]], [2, 2], name="probs"),
            tensor([1, 0], [2], "INT64", name="label"),
        ],
    }
    rows = events(body)
    assert [(e.id, e.model, e.model_version) for e in rows] == [
        ("r1:0", "resnet", "7"),
        ("r1:1", "resnet", "7"),
    ]
    assert [e.outputs.tolist() for e in rows] == [[0.1, 0.9, 1], [0.8, 0.2, 0]]
    assert rows[0].label is None


def test_requested_outputs_without_data_are_ignored():
    body = {"inputs": [tensor([1.0], [1])], "outputs": [{"name": "probs"}]}
    assert events(body)[0].outputs is None


def test_outputs_with_another_batch_are_rejected():
    body = {"inputs": [tensor([1, 2, 3, 4], [2, 2])], "outputs": [tensor([1, 2, 3], [3, 1])]}
    assert "where 2 were expected" in error(body, "bad-shape")


def test_outputs_may_be_non_finite_but_must_be_numbers():
    value = (
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],'
        b' "outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [NaN]}]}'
    )
    assert np.isnan(events(value)[0].outputs[0])
    body = {"inputs": [tensor([1], [1])], "outputs": [tensor(["a"], [1], name="y")]}
    assert "OIP output 'y'" in error(body, "bad-dtype")


@pytest.mark.parametrize(
    ("field", "value"), [("id", [1]), ("model_name", 3.5), ("model_version", {"v": 1})]
)
def test_text_fields_must_be_strings(field, value):
    body = {"inputs": [tensor([1], [1])], field: value}
    assert f"'{field}' must be a string" in error(body, "bad-dtype")


def test_rows_of_a_batch_are_views_of_one_array():
    rows = events({"inputs": [tensor([1, 2, 3, 4], [2, 2])]})
    assert rows[0].inputs.base is rows[1].inputs.base
