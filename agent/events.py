"""Inference events and the decoder that turns Kafka records into them.

The consumer hands over library-independent `RawRecord` objects; `EventDecoder` turns each into
zero or more `InferenceEvent` rows (one per input row of a batch) using one wire format per
topic, or sniffing it per record (`EventDecoder.decode_batch` decodes a poll's records together:
the same answers, faster). Decoding never raises on bad data: the reason comes back in
`Decoded.error` as a `DecodeError` whose ``reason`` is one of `DECODE_REASONS`, a bounded set
fit for a Prometheus label.

Examples
--------
>>> dec = EventDecoder("plain-json", model_name="digits")
>>> rec = RawRecord("traffic", 0, 7, 1_700_000_000_000, None, b'{"id": "a", "inputs": [1, 2]}')
>>> d = dec.decode(rec)
>>> d.events[0].id, d.events[0].model, d.events[0].inputs.tolist(), d.events[0].timestamp
('a', 'digits', [1.0, 2.0], 1700000000.0)
>>> dec.decode(RawRecord("traffic", 0, 8, None, None, b"[1, 2]")).error.reason
'invalid-json'
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np

DECODE_REASONS: tuple[str, ...] = (
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
)
"""Every value `DecodeError.reason` can take, in a stable order (pre-register metric labels)."""

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("auto", "oip-json", "kserve-cloudevents", "plain-json")
"""The wire formats `EventDecoder` accepts."""


class RawRecord(NamedTuple):
    """One Kafka record as the consumer hands it over, independent of the client library.

    A named tuple rather than a dataclass: one is built per record read, on the hot path.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class InferenceEvent:
    """One row of model traffic.

    ``inputs`` is the 1-D flattened features of one input row: float64, or the declared dtype of
    OIP integer and BOOL tensors (the consumer casts whole batches). ``outputs`` is the 1-D
    flattened outputs of that row, or None. ``headers`` are the record's Kafka headers, kept for
    provenance. The rows of one batch are views of one array and share one headers dict: treat
    them as read-only.
    """

    id: str
    model: str
    model_version: str | None
    timestamp: float
    inputs: np.ndarray
    outputs: np.ndarray | None
    label: int | None
    client_id: str | None
    headers: Mapping[str, bytes]


class DecodeError(ValueError):
    """A record that cannot be turned into events.

    Parameters
    ----------
    reason : str
        A short stable code, one of `DECODE_REASONS` (used as a metric label).
    detail : str
        What was wrong and, where it helps, how to fix it; this is ``str(err)``.
    """

    reasons: ClassVar[frozenset[str]] = frozenset(DECODE_REASONS)

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in self.reasons:
            raise ValueError(f"unknown decode reason {reason!r}; expected one of {DECODE_REASONS}")
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Decoded:
    """What `EventDecoder.decode` gives back for one record.

    ``events`` are ready now; they are empty when the record is ``held`` for a join or when
    ``error`` is set. One case sets both: a KServe response whose rows do not match its
    request's rows gives the request's events without outputs and a ``bad-shape`` error.
    """

    events: tuple[InferenceEvent, ...]
    held: bool = False
    error: DecodeError | None = None


@dataclass(frozen=True, slots=True)
class Released:
    """A held record given back without its join partner (timed out or evicted).

    An orphan request comes back as events with ``outputs=None``; an orphan response as an
    ``orphan-response`` error. Once released, a record no longer counts in
    `EventDecoder.held_offsets`: process its events before the next commit.
    """

    record: RawRecord
    events: tuple[InferenceEvent, ...]
    error: DecodeError | None
    incomplete: bool = True


class EventDecoder:
    """Decode Kafka records of one topic into `InferenceEvent` rows.

    Parameters
    ----------
    fmt : {"auto", "oip-json", "kserve-cloudevents", "plain-json"}
        The wire format; ``"auto"`` sniffs each record (CloudEvent headers, then the body).
    model_name, model_version : str, str or None
        Used when a record does not name its model.
    max_record_bytes : int
        Larger record values are rejected as ``oversized`` before parsing.
    expected_features : int or None
        When set, a row with another feature count is rejected as ``bad-shape``.
    client_id_header : str
        The Kafka header that carries the client id (before any id in the body).
    join_ttl_seconds : float
        How long a KServe request or response waits for its partner, measured with ``clock``.
    max_pending_joins : int
        At most this many records wait; when full, the oldest is evicted. Evicted records come
        back, like timed-out ones, from the next `expire` call, and count in `held_offsets` until
        then: call `expire` after every poll.
    clock : callable
        Monotonic seconds, for the join time-to-live.
    """

    def __init__(
        self,
        fmt: Literal["auto", "oip-json", "kserve-cloudevents", "plain-json"],
        *,
        model_name: str,
        model_version: str | None = None,
        max_record_bytes: int = 16 * 2**20,
        expected_features: int | None = None,
        client_id_header: str = "client-id",
        join_ttl_seconds: float = 60.0,
        max_pending_joins: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here: the codecs import this module's types, so a module-level import would
        # be circular.
        from agent import codecs

        _validate(
            fmt=fmt,
            model_name=model_name,
            model_version=model_version,
            max_record_bytes=max_record_bytes,
            expected_features=expected_features,
            client_id_header=client_id_header,
            join_ttl_seconds=join_ttl_seconds,
            max_pending_joins=max_pending_joins,
            clock=clock,
        )
        self.fmt = fmt
        self.model_name = model_name
        self.model_version = model_version
        self.max_record_bytes = max_record_bytes
        self.expected_features = expected_features
        self.client_id_header = client_id_header
        self.join_ttl_seconds = join_ttl_seconds
        self.max_pending_joins = max_pending_joins
        self.clock = clock
        options = codecs.CodecOptions(
            model_name, model_version, expected_features, client_id_header
        )
        self._options = options
        self._parse = codecs.parse_object
        self._sniff = codecs.sniff_body
        self._body_codecs = {"oip-json": codecs.oip.decode, "plain-json": codecs.plain.decode}
        # what of a body decode_batch converts with the batch's other inputs, per format
        self._batch_inputs = {"oip-json": codecs.oip.batch_data, "plain-json": _plain_inputs}
        self._float_rows = codecs.arrays.flat_float_rows
        self._joiner = codecs.CloudEventJoiner(options, join_ttl_seconds, max_pending_joins, clock)

    def decode(self, record: RawRecord) -> Decoded:
        """Decode one record; bad data comes back in ``Decoded.error``, never raised."""
        fmt, body = self._read(record)
        if fmt == "kserve-cloudevents":
            return self._joiner.decode(record)
        return self._decode_body(record, fmt, body)

    def decode_batch(self, records: Sequence[RawRecord]) -> list[Decoded]:
        """Decode records in order: exactly ``[self.decode(r) for r in records]``, faster.

        The same events (ids, models, versions, times, inputs, outputs, labels, client ids,
        headers) and the same errors, record for record; KServe CloudEvents reach the join
        buffer in the same order, after every other record of the batch is decoded. An error in
        one record never touches another.

        Faster because the inputs of plain JSON bodies, and the data of OIP bodies with one
        float input tensor (`agent.codecs.oip.batch_data`), are converted together
        (`agent.codecs.arrays.flat_float_rows`: one C call per list and one finiteness check
        per batch instead of an ``np.asarray`` and a check per record); each record is still
        parsed alone, and every other check is the one `decode` runs. The inputs of one batch
        are rows of one array, like those of one OIP batch. A list the batch conversion is not
        sure of is converted alone, as `decode` does, which also gives its exact error.
        """
        try:
            decoded, joined = self._decode_pure(records)
        except Exception:  # a bug of the batch path must not lose the batch
            log.exception("batch decoding failed; decoding its %d records one by one", len(records))
            return [self.decode(record) for record in records]
        for index in joined:
            decoded[index] = self._joiner.decode(records[index])
        return decoded

    def _decode_pure(self, records: Sequence[RawRecord]) -> tuple[list[Decoded | None], list[int]]:
        """`decode_batch` without its side effects, and the positions of the KServe
        CloudEvents, left for the join (their places hold None)."""
        read = [self._read(record) for record in records]
        rows = self._float_rows([self._batch_inputs.get(fmt, _none)(body) for fmt, body in read])
        decoded: list[Decoded | None] = []
        joined: list[int] = []
        for record, (fmt, body), row in zip(records, read, rows, strict=True):
            if fmt == "kserve-cloudevents":
                joined.append(len(decoded))
                decoded.append(None)
            else:
                decoded.append(self._decode_body(record, fmt, body, row))
        return decoded, joined

    def _decode_body(
        self, record: RawRecord, fmt: str | None, body: object, inputs: np.ndarray | None = None
    ) -> Decoded:
        """Decode what `_read` gave (other than a CloudEvent): a body, or its error. ``inputs``
        are the body's inputs (plain) or one tensor's data (OIP) already converted (by
        `decode_batch`), or None."""
        if fmt is None:
            return Decoded((), error=body)
        try:
            events = self._body_codecs[fmt](body, record, self._options, inputs)
        except DecodeError as err:
            return Decoded((), error=err)
        return _ready(events)

    def _read(self, record: RawRecord) -> tuple[str | None, object]:
        """The record's format and its parsed body, without side effects: ``(None, error)``
        for a record rejected before any codec, ``("kserve-cloudevents", None)`` for one the
        join decodes."""
        value = record.value
        if not value:
            return None, _EMPTY
        if len(value) > self.max_record_bytes:
            return None, _oversized(len(value), self.max_record_bytes)
        fmt = self.fmt
        if fmt == "kserve-cloudevents" or (fmt == "auto" and _has_cloudevent_headers(record)):
            return "kserve-cloudevents", None
        try:
            body = self._parse(value)
            if fmt == "auto":
                fmt = self._sniff(body)
        except DecodeError as err:
            return None, err
        return fmt, body

    def expire(self) -> list[Released]:
        """Give back the join partners that waited past the TTL, and any evicted ones."""
        return self._joiner.expire()

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Map (topic, partition) to the smallest offset still held; never commit past it."""
        return self._joiner.held_offsets()

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the held records of revoked partitions (their new owner re-reads them)."""
        self._joiner.forget_partitions(partitions)

    @property
    def pending_joins(self) -> int:
        """How many records wait for their join partner (evicted ones not counted)."""
        return self._joiner.pending

    def __repr__(self) -> str:
        return f"EventDecoder({self.fmt!r}, model_name={self.model_name!r})"


def _plain_inputs(body: dict) -> object:
    return body.get("inputs")


def _none(body: object) -> None:
    return None


class _Unfrozen:
    """`Decoded`'s slots without its frozen ``__setattr__``, for `_ready`."""

    __slots__ = Decoded.__slots__


def _ready(events: tuple[InferenceEvent, ...]) -> Decoded:
    """``Decoded(events)`` without the frozen ``__init__``'s per-field ``object.__setattr__``
    (about half the cost; the decode hot path): plain attribute stores on an object of the same
    slots, then ``__class__`` assignment, which Python allows between classes of one layout."""
    decoded = _Unfrozen()
    decoded.events = events
    decoded.held = False
    decoded.error = None
    decoded.__class__ = Decoded
    return decoded


def _has_cloudevent_headers(record: RawRecord) -> bool:
    # A loop, not any(): no generator to build per record (a hot path).
    for name, _ in record.headers:  # noqa: SIM110
        if name == "ce_type" or name == "ce_id":
            return True
    return False


_EMPTY = DecodeError("empty", "the record has no value (an empty body or a tombstone)")


def _oversized(size: int, limit: int) -> DecodeError:
    return DecodeError(
        "oversized",
        f"the record is {size} bytes, over max_record_bytes={limit}; raise max_record_bytes if "
        "such records are expected",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object) -> bool:
    return _is_int(value) and value > 0


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


_CONSTRAINTS: dict[str, tuple[Callable[[object], bool], str]] = {
    "fmt": (lambda v: v in FORMATS, f"one of {', '.join(map(repr, FORMATS))}"),
    "model_name": (_text, "a non-empty str"),
    "model_version": (lambda v: v is None or isinstance(v, str), "a str or None"),
    "max_record_bytes": (_positive_int, "a positive int"),
    "expected_features": (lambda v: v is None or _positive_int(v), "a positive int or None"),
    "client_id_header": (_text, "a non-empty str"),
    "join_ttl_seconds": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf,
        "a positive finite number of seconds",
    ),
    "max_pending_joins": (_positive_int, "a positive int"),
    "clock": (callable, "a callable returning seconds"),
}


def _validate(**params: object) -> None:
    for name, value in params.items():
        ok, expected = _CONSTRAINTS[name]
        if not ok(value):
            raise ValueError(
                f"The {name!r} parameter of EventDecoder must be {expected}. Got {value!r} instead."
            )
