"""Producing result records and dead letters to Kafka.

Formatting stays elsewhere (:meth:`ResultRecord.to_json`, done by detection: results arrive
as :class:`EncodedResult`); this module only hands bytes to a :class:`kafka.KafkaProducer` and
returns its futures so the runner can wait for the acknowledgements before it commits the
source offsets.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from agent.events import DecodeError, RawRecord
from agent.pipeline import EncodedResult

log = logging.getLogger(__name__)

#: Header names of a dead letter; the original record's headers are kept beside them.
ERROR_HEADER = "robustwatch-error"
REASON_HEADER = "robustwatch-error-reason"
SOURCE_TOPIC_HEADER = "robustwatch-source-topic"
SOURCE_PARTITION_HEADER = "robustwatch-source-partition"
SOURCE_OFFSET_HEADER = "robustwatch-source-offset"
VALUE_DROPPED_HEADER = "robustwatch-value-dropped"

#: Room kept for the key, the headers and the batch overhead under the producer's size limit.
_ENVELOPE_BYTES = 64 * 1024


class KafkaSink:
    """Send results and dead letters; every send returns the producer's future."""

    def __init__(self, producer: KafkaProducer, results_topic: str, dead_letter_topic: str):
        self.producer = producer
        self.results_topic = results_topic
        self.dead_letter_topic = dead_letter_topic
        max_request = int(producer.config.get("max_request_size", 1024 * 1024))
        self.max_forward_bytes = max(0, max_request - _ENVELOPE_BYTES)

    @staticmethod
    def await_acks(futures: Sequence[FutureRecordMetadata], timeout_seconds: float) -> None:
        """Wait until every send is acknowledged or has failed, or ``timeout_seconds`` passed.

        Never raises for a send: a failure stays on its future, for the caller to read.
        """
        deadline = time.monotonic() + timeout_seconds
        for future in futures:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not future.is_done:
                with contextlib.suppress(Exception):  # the send's failure, or the timeout
                    future.get(timeout=left)

    def send_result(self, result: EncodedResult) -> FutureRecordMetadata:
        return self.producer.send(self.results_topic, key=result.id.encode(), value=result.value)

    def send_dead_letter(self, record: RawRecord, error: DecodeError) -> FutureRecordMetadata:
        """Forward the record unchanged, with the reason and its origin in headers.

        A value too large for the producer's ``max_request_size`` is dropped (the headers say
        so and where the original lies); the dead letter itself is never lost.
        """
        headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("robustwatch-")],
            (ERROR_HEADER, f"{error.reason}: {error}".encode()),
            (REASON_HEADER, error.reason.encode()),
            (SOURCE_TOPIC_HEADER, record.topic.encode()),
            (SOURCE_PARTITION_HEADER, str(record.partition).encode()),
            (SOURCE_OFFSET_HEADER, str(record.offset).encode()),
        ]
        value = record.value
        if value is not None and len(value) > self.max_forward_bytes:
            value = None
            headers.append((VALUE_DROPPED_HEADER, b"value larger than the producer may send"))
        try:
            return self.producer.send(
                self.dead_letter_topic, key=record.key, value=value, headers=headers
            )
        except KafkaError as exc:  # e.g. a key or headers too large: keep the reason at least
            log.warning(
                "dead letter for %s-%s@%s: %s", record.topic, record.partition, record.offset, exc
            )
            headers.append((VALUE_DROPPED_HEADER, str(exc).encode()[:512]))
            return self.producer.send(self.dead_letter_topic, value=None, headers=headers)
