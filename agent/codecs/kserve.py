"""KServe payload-logger CloudEvents in binary mode, with the request/response join.

The logger sends each request and each response as its own Kafka record; the CloudEvent
attributes travel as headers (``ce_id``, ``ce_type``, ``ce_time``, ``ce_inferenceservicename``,
...). ``ce_type`` is `REQUEST_TYPE` or `RESPONSE_TYPE`. Bodies are OIP V2 JSON or KServe V1
(``{"instances": [...]}`` / ``{"predictions": [...]}``, one row per instance or prediction; a
scalar prediction is a class index, an output of length 1).

Request and response share ``ce_id``: whichever arrives first is held in a `JoinBuffer` until
the other comes, and the pair becomes events with the request's inputs and the response's
outputs. An orphan request is released as events without outputs; an orphan response as an
``orphan-response`` error.

Examples
--------
>>> from agent.codecs.common import CodecOptions
>>> from agent.events import RawRecord
>>> joiner = CloudEventJoiner(CodecOptions("clf", None, None, "client-id"), 60.0, 100, lambda: 0.0)
>>> def ce(kind, offset, body):
...     headers = (("ce_id", b"req-1"), ("ce_type", f"{PREFIX}.{kind}".encode()))
...     return RawRecord("logs", 0, offset, 0, None, body, headers)
>>> joiner.decode(ce("request", 10, b'{"instances": [[1, 2], [3, 4]]}')).held
True
>>> d = joiner.decode(ce("response", 11, b'{"predictions": [0, 1]}'))
>>> [(e.id, e.inputs.tolist(), e.outputs.tolist()) for e in d.events]
[('req-1:0', [1.0, 2.0], [0.0]), ('req-1:1', [3.0, 4.0], [1.0])]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from agent.codecs import oip
from agent.codecs.arrays import numeric_rows
from agent.codecs.common import (
    CodecOptions,
    build_events,
    check_features,
    client_id,
    header,
    new_event,
    parse_object,
    timestamp,
)
from agent.codecs.join import JoinBuffer, Pending
from agent.codecs.tensors import Tensor, parse_tensor, stack_rows
from agent.events import Decoded, DecodeError, InferenceEvent, RawRecord, Released

PREFIX = "org.kubeflow.serving.inference"
REQUEST_TYPE = f"{PREFIX}.request"
RESPONSE_TYPE = f"{PREFIX}.response"


@dataclass(frozen=True, slots=True)
class _Response:
    """A decoded response: V1 rows, or OIP tensors stacked once the request's batch is known."""

    rows: np.ndarray | None
    tensors: tuple[Tensor, ...] = ()

    def outputs(self, batch: int) -> np.ndarray:
        if self.rows is not None:
            return self.rows
        return stack_rows(list(self.tensors), "OIP output", batch)


class CloudEventJoiner:
    """Decode KServe CloudEvent records and join each request to its response by ``ce_id``.

    Parameters
    ----------
    options : CodecOptions
        The decoder settings.
    ttl_seconds, max_pending, clock
        The bounds of the `JoinBuffer` that holds unmatched records.
    """

    def __init__(
        self,
        options: CodecOptions,
        ttl_seconds: float,
        max_pending: int,
        clock: Callable[[], float],
    ) -> None:
        self.options = options
        self._buffer = JoinBuffer(ttl_seconds, max_pending, clock)

    @property
    def pending(self) -> int:
        """How many records wait for their partner."""
        return len(self._buffer)

    def decode(self, record: RawRecord) -> Decoded:
        """Decode one record: held, joined into events, or an error."""
        try:
            headers = dict(record.headers)
            ce_id, is_request = _cloud_event(headers)
            body = parse_object(record.value)
            if is_request:
                events = _request_events(body, headers, record, ce_id, self.options)
                partner = self._buffer.take(ce_id, "response")
                if partner is None:
                    self._buffer.hold(ce_id, "request", record, events)
                    return Decoded((), held=True)
                return _join(events, partner.item, ce_id)
            response = _response(body)
            partner = self._buffer.take(ce_id, "request")
            if partner is None:
                self._buffer.hold(ce_id, "response", record, response)
                return Decoded((), held=True)
            return _join(partner.item, response, ce_id)
        except DecodeError as err:
            return Decoded((), error=err)

    def expire(self) -> list[Released]:
        """Release the evicted records and those that waited past the TTL."""
        now = self._buffer.clock()
        return [self._release(entry, now) for entry in self._buffer.expire()]

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Map (topic, partition) to the smallest offset held."""
        return self._buffer.held_offsets()

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the held records of revoked partitions."""
        self._buffer.forget(partitions)

    def _release(self, entry: Pending, now: float) -> Released:
        if entry.kind == "request":
            return Released(entry.record, entry.item, None)
        if entry.deadline >= now:
            why = f"was evicted: max_pending_joins={self._buffer.max_pending} records were waiting"
        else:
            why = f"got no request within join_ttl_seconds={self._buffer.ttl_seconds:g}"
        detail = (
            f"the KServe response with ce_id {entry.key!r} {why}; check that the logger sends "
            "requests to the same topic, or raise the bound"
        )
        return Released(entry.record, (), DecodeError("orphan-response", detail))


def _cloud_event(headers: dict[str, bytes]) -> tuple[str, bool]:
    ce_id = header(headers, "ce_id")
    if not ce_id:
        raise DecodeError(
            "missing-field",
            "the record has no ce_id header; kserve-cloudevents expects binary-mode CloudEvents "
            "(ce_id and ce_type as Kafka headers), as the KServe payload logger sends them",
        )
    ce_type = header(headers, "ce_type")
    if ce_type is None:
        raise DecodeError("missing-field", f"the CloudEvent {ce_id!r} has no ce_type header")
    if ce_type not in (REQUEST_TYPE, RESPONSE_TYPE):
        raise DecodeError(
            "unknown-format",
            f"the CloudEvent {ce_id!r} has ce_type {ce_type!r}; expected {REQUEST_TYPE} or "
            f"{RESPONSE_TYPE}",
        )
    return ce_id, ce_type == REQUEST_TYPE


def _request_events(
    body: dict, headers: dict[str, bytes], record: RawRecord, ce_id: str, options: CodecOptions
) -> tuple[InferenceEvent, ...]:
    if "inputs" in body:
        message = oip.parse_request(body, options)
        inputs, outputs = message.inputs, message.outputs
        model, version, client = message.model_name, message.model_version, message.client_id
    elif "instances" in body:
        inputs = numeric_rows(body["instances"], "the KServe V1 'instances'", rows=True)
        check_features(inputs, options, "the KServe V1 request")
        outputs = model = version = client = None
    else:
        raise DecodeError(
            "missing-field",
            f"the KServe request {ce_id!r} has neither 'inputs' (V2) nor 'instances' (V1)",
        )
    return build_events(
        ce_id,
        header(headers, "ce_inferenceservicename") or model or options.model_name,
        version or options.model_version,
        timestamp(headers, record),
        inputs,
        outputs,
        None,
        client_id(headers, options, client),
        headers,
    )


def _response(body: dict) -> _Response:
    if "outputs" in body:
        tensors = body["outputs"]
        if not isinstance(tensors, list) or not tensors:
            raise DecodeError(
                "missing-field", "the OIP response's 'outputs' must be a non-empty list of tensors"
            )
        return _Response(
            None, tuple(parse_tensor(t, "OIP output", check_finite=False) for t in tensors)
        )
    if "predictions" in body:
        rows = numeric_rows(
            body["predictions"], "the KServe V1 'predictions'", rows=True, check_finite=False
        )
        return _Response(rows)
    raise DecodeError(
        "missing-field", "the KServe response has neither 'outputs' (V2) nor 'predictions' (V1)"
    )


def _join(events: tuple[InferenceEvent, ...], response: _Response, ce_id: str) -> Decoded:
    try:
        outputs = response.outputs(len(events))
        if outputs.shape[0] != len(events):
            raise DecodeError(
                "bad-shape",
                f"the KServe response {ce_id!r} holds {outputs.shape[0]} rows but its request "
                f"holds {len(events)}; the request's events go on without outputs",
            )
    except DecodeError as err:
        return Decoded(tuple(_with_outputs(e, None) for e in events), error=err)
    return Decoded(tuple(_with_outputs(e, outputs[i]) for i, e in enumerate(events)))


def _with_outputs(event: InferenceEvent, outputs: np.ndarray | None) -> InferenceEvent:
    return new_event(
        event.id,
        event.model,
        event.model_version,
        event.timestamp,
        event.inputs,
        outputs,
        event.label,
        event.client_id,
        event.headers,
    )
