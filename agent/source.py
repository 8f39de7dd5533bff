"""Reading inference traffic from Kafka with a consumer group.

:class:`KafkaSource` wraps :class:`kafka.KafkaConsumer` with what the runner needs and nothing
else: records as library-independent :class:`~agent.events.RawRecord` values, explicit offset
commits (auto-commit is always off), pause/resume for backpressure, consumer lag from the
high-water marks of fetch responses, and a rebalance listener that only *records* revoked
partitions. kafka-python 3 calls the listener on its I/O thread and forbids blocking commits
there, so the runner applies revocations on its own thread after each poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from itertools import repeat
from typing import NamedTuple, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from agent.events import RawRecord
from agent.exceptions import StartupError

log = logging.getLogger(__name__)

Partition = tuple[str, int]
T = TypeVar("T")


def connect_with_backoff(
    connect: Callable[[int], T],
    what: str,
    max_seconds: float,
    stop: threading.Event,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
) -> T:
    """Call ``connect(timeout_ms)`` until it succeeds, with exponential backoff between tries.

    Each try may take ``timeout_ms`` (half the time left, within 1 to 10 s) to reach a
    broker. Raises :class:`StartupError` once ``max_seconds`` have passed, or when ``stop``
    is set.
    """
    deadline = time.monotonic() + max_seconds
    delay = first_delay
    attempt = 1
    while True:
        remaining_ms = (deadline - time.monotonic()) * 1000
        try:
            return connect(int(min(10_000, max(1_000, remaining_ms / 2))))
        except (KafkaError, OSError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StartupError(
                    f"could not reach Kafka for the {what} after {attempt} attempts "
                    f"({max_seconds:.0f} s): {exc}. Check kafka.bootstrap_servers and "
                    "kafka.security, or raise pipeline.startup_retry_max_seconds."
                ) from exc
            wait = min(delay, max_delay, remaining)
            log.warning(
                "cannot reach Kafka for the %s (attempt %d): %s; retrying in %.1f s",
                what,
                attempt,
                exc,
                wait,
            )
            if stop.wait(wait):
                raise StartupError(f"stopped while connecting the {what}") from exc
            delay *= 2
            attempt += 1


class PartitionBatch(NamedTuple):
    """The records one poll gave for one partition, column by column, in offset order.

    Columns are what the runner hands a worker process: lists of ints and bytes cross a pipe
    several times cheaper than one object per record.
    """

    topic: str
    partition: int
    offsets: list[int]
    timestamps_ms: list[int | None]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[tuple[tuple[str, bytes], ...]]

    @property
    def next_offset(self) -> int:
        """The offset after the batch's last record."""
        return self.offsets[-1] + 1

    def records(self) -> list[RawRecord]:
        """The batch as one :class:`~agent.events.RawRecord` per record."""
        n = len(self.offsets)
        fields = zip(
            repeat(self.topic, n),
            repeat(self.partition, n),
            self.offsets,
            self.timestamps_ms,
            self.keys,
            self.values,
            self.headers,
            strict=True,
        )
        # tuple.__new__ straight from C: a named tuple's own __new__ is a Python function,
        # twice the cost per record (the worker rebuilds every record it is sent)
        return list(map(_new_record, fields))


_new_record = partial(tuple.__new__, RawRecord)


def records_of(batches: Iterable[PartitionBatch]) -> list[RawRecord]:
    """The records of several partition batches, partition by partition."""
    return [record for batch in batches for record in batch.records()]


class _RevocationRecorder(ConsumerRebalanceListener):
    """Remember revoked or lost partitions for the poll loop to apply; never blocks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: set[Partition] = set()
        self.assigned_once = threading.Event()

    def on_partitions_revoked(self, revoked) -> None:
        with self._lock:
            self._revoked.update((tp.topic, tp.partition) for tp in revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self.assigned_once.set()

    def take(self) -> set[Partition]:
        with self._lock:
            revoked, self._revoked = self._revoked, set()
        return revoked


class KafkaSource:
    """A subscribed consumer group member; see the module docstring."""

    def __init__(self, consumer: KafkaConsumer, topics: Iterable[str]):
        self.consumer = consumer
        self.topics = tuple(topics)
        self._listener = _RevocationRecorder()
        self.consumer.subscribe(topics=list(self.topics), listener=self._listener)
        self._read_next: dict[Partition, int] = {}
        self._paused = False

    @classmethod
    def connect(
        cls, consumer_kwargs: dict, topics: Iterable[str], max_seconds: float, stop: threading.Event
    ) -> KafkaSource:
        consumer = connect_with_backoff(
            lambda timeout_ms: KafkaConsumer(**consumer_kwargs, bootstrap_timeout_ms=timeout_ms),
            "consumer",
            max_seconds,
            stop,
        )
        return cls(consumer, topics)

    def poll(self, timeout_ms: int, max_records: int) -> list[PartitionBatch]:
        """At most ``max_records`` records, one batch per partition that had any."""
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        batches: list[PartitionBatch] = []
        for tp, consumer_records in polled.items():
            if not consumer_records:
                continue
            batch = PartitionBatch(
                tp.topic,
                tp.partition,
                [r.offset for r in consumer_records],
                [r.timestamp for r in consumer_records],
                [r.key for r in consumer_records],
                [r.value for r in consumer_records],
                [tuple(r.headers) if r.headers else () for r in consumer_records],
            )
            batches.append(batch)
            self._read_next[(tp.topic, tp.partition)] = batch.next_offset
        return batches

    def take_revoked(self) -> set[Partition]:
        """Partitions revoked or lost since the last call (their state must be dropped)."""
        revoked = self._listener.take()
        for partition in revoked:
            self._read_next.pop(partition, None)
        return revoked

    def assignment(self) -> set[Partition]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    @property
    def has_joined(self) -> bool:
        return self._listener.assigned_once.is_set()

    def pause(self) -> None:
        if not self._paused:
            self.consumer.pause(*self.consumer.assignment())
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            self.consumer.resume(*self.consumer.paused())
            self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def commit(
        self, offsets: dict[Partition, int], sync: bool = False, timeout_ms: int | None = None
    ) -> None:
        """Commit the next offset to read for each partition (last processed + 1)."""
        if not offsets:
            return
        payload = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in offsets.items()
        }
        if sync:
            self.consumer.commit(payload, timeout_ms=timeout_ms)
        else:
            self.consumer.commit_async(payload, callback=_log_commit_failure)

    def lags(self) -> dict[Partition, int]:
        """Records not yet read per assigned partition, from fetch-response high-water marks."""
        lags: dict[Partition, int] = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            position = self._read_next.get((tp.topic, tp.partition))
            if highwater is None:
                continue
            if position is None:
                position = self.consumer.position(tp, timeout_ms=100)
                if position is None:
                    continue
            lags[(tp.topic, tp.partition)] = max(0, highwater - position)
        return lags

    def committed(self, partition: Partition) -> int | None:
        return self.consumer.committed(TopicPartition(*partition), timeout_ms=5000)

    def seek(self, partition: Partition, offset: int) -> None:
        self.consumer.seek(TopicPartition(*partition), offset)
        self._read_next[partition] = offset

    def close(self) -> None:
        try:
            self.consumer.close(autocommit=False, timeout_ms=5000)
        except KafkaError as exc:
            log.warning("closing the consumer: %s", exc)


def _log_commit_failure(offsets, response) -> None:
    if isinstance(response, Exception):
        log.warning("offset commit failed (the records will be read again): %s", response)
