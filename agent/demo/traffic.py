"""Encoders for simulated inference traffic, in every wire format the agent reads.

Used by the demo, the end-to-end tests and the benchmarks to play the part of a model server
(KServe, Triton, Seldon) writing its traffic to Kafka. Each function returns Kafka records as
``(key, value, headers)`` tuples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

KafkaRecord = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def plain_json(
    event_id: str,
    inputs: np.ndarray,
    outputs: np.ndarray | None = None,
    model: str = "demo",
    label: int | None = None,
    client_id: str | None = None,
) -> KafkaRecord:
    body: dict = {"id": event_id, "model": model, "inputs": np.asarray(inputs).ravel().tolist()}
    if outputs is not None:
        body["outputs"] = np.asarray(outputs).ravel().tolist()
    if label is not None:
        body["label"] = int(label)
    if client_id is not None:
        body["client_id"] = client_id
    return event_id.encode(), _dumps(body), []


def _oip_tensor(name: str, array: np.ndarray, datatype: str) -> dict:
    array = np.asarray(array)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.ravel().tolist(),
    }


def oip_request_body(event_id: str, inputs: np.ndarray, datatype: str = "FP32") -> dict:
    """An Open Inference Protocol request for one row (shape ``[1, *features]``)."""
    row = np.asarray(inputs)[None, ...]
    return {"id": event_id, "inputs": [_oip_tensor("input-0", row, datatype)]}


def oip_response_body(event_id: str, outputs: np.ndarray, model: str = "demo") -> dict:
    row = np.asarray(outputs)[None, ...]
    return {"id": event_id, "model_name": model, "outputs": [_oip_tensor("output-0", row, "FP32")]}


def oip_json(
    event_id: str,
    inputs: np.ndarray,
    outputs: np.ndarray | None = None,
    client_id: str | None = None,
) -> KafkaRecord:
    body = oip_request_body(event_id, inputs)
    if outputs is not None:
        body["outputs"] = oip_response_body(event_id, outputs)["outputs"]
    headers = [("client-id", client_id.encode())] if client_id else []
    return event_id.encode(), _dumps(body), headers


def kserve_cloudevents(
    event_id: str,
    inputs: np.ndarray,
    outputs: np.ndarray,
    model: str = "demo",
    namespace: str = "default",
    client_id: str | None = None,
) -> list[KafkaRecord]:
    """The request and the response CloudEvent (binary mode) that KServe's logger writes;
    ``client_id`` rides in a ``client-id`` header, as a gateway in front of the model adds it."""

    def headers(ce_type: str) -> list[tuple[str, bytes]]:
        client = [("client-id", client_id.encode())] if client_id else []
        return [
            *client,
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_type", ce_type.encode()),
            ("ce_source", f"http://localhost:9081/{model}".encode()),
            ("ce_inferenceservicename", model.encode()),
            ("ce_namespace", namespace.encode()),
            ("ce_component", b"predictor"),
            ("content-type", b"application/json"),
        ]

    key = event_id.encode()
    return [
        (key, _dumps(oip_request_body(event_id, inputs)), headers(REQUEST_TYPE)),
        (key, _dumps(oip_response_body(event_id, outputs, model)), headers(RESPONSE_TYPE)),
    ]


def encode(
    fmt: str, event_id: str, inputs: np.ndarray, outputs: np.ndarray | None = None
) -> Sequence[KafkaRecord]:
    """The records one event becomes in format ``fmt``."""
    if fmt == "plain-json":
        return [plain_json(event_id, inputs, outputs)]
    if fmt == "oip-json":
        return [oip_json(event_id, inputs, outputs)]
    if fmt == "kserve-cloudevents":
        if outputs is None:
            outputs = np.zeros(1)
        return kserve_cloudevents(event_id, inputs, outputs)
    raise ValueError(f"unknown format {fmt!r}: expected plain-json, oip-json or kserve-cloudevents")
