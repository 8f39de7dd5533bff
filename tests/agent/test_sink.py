"""KafkaSink.await_acks: the runner's wait for a full queue's oldest batch."""

from __future__ import annotations

import threading
import time

from kafka.errors import KafkaError
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata
from kafka.structs import TopicPartition

from agent.sink import KafkaSink


def _send() -> tuple[FutureProduceResult, FutureRecordMetadata]:
    """A send's future as the producer makes it, and the batch future that settles it."""
    batch = FutureProduceResult(TopicPartition("results", 0))
    return batch, FutureRecordMetadata(batch, 0, 0, None, 1, 1, 0)


def test_it_returns_once_every_send_is_acknowledged_or_failed_and_never_raises():
    (ok_batch, ok), (bad_batch, bad) = _send(), _send()
    ok_batch.success((7, -1, None))
    bad_batch.failure(KafkaError("the broker refused the batch"))
    started = time.monotonic()
    KafkaSink.await_acks([ok, bad], timeout_seconds=5.0)
    assert time.monotonic() - started < 1.0
    assert ok.succeeded() and ok.value.offset == 7
    assert bad.failed() and isinstance(bad.exception, KafkaError)  # left for the caller


def test_it_gives_up_on_a_pending_send_after_the_timeout():
    _, pending = _send()
    started = time.monotonic()
    KafkaSink.await_acks([pending], timeout_seconds=0.2)
    assert 0.15 <= time.monotonic() - started < 2.0
    assert not pending.is_done


def test_it_wakes_when_the_acknowledgement_arrives():
    batch, future = _send()
    threading.Timer(0.1, batch.success, args=((3, -1, None),)).start()
    started = time.monotonic()
    KafkaSink.await_acks([future], timeout_seconds=10.0)
    assert future.succeeded()
    assert time.monotonic() - started < 5.0
