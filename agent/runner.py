"""The agent's poll loop: Kafka in, decode, detect, results out, offsets committed.

At-least-once, by construction:

* a micro-batch's offsets become committable only once every record it produced (results and
  dead letters) was acknowledged by the brokers;
* a partition's commit never passes a record that is still held for a join, nor one whose
  events ride in a batch not yet acknowledged (see :meth:`Agent._commit_completed`);
* a produce that fails for good rewinds every partition to its last committed offset and
  reads the records again.

Memory stays bounded: at most ``pipeline.max_inflight_batches`` micro-batches are being
detected or wait for their acknowledgements. Beyond that the loop reads nothing and waits for the
oldest batch, a poll timeout at a time; should it still wait after one, the consumer pauses its
partitions (and keeps polling, so it stays in the group) until the oldest batch is acknowledged.
It does not pause at once: a paused kafka-python consumer parks what it has fetched and fetches
again only after the resume, which stalled a worker process for ~0.1 s at a time.

Decoding and detection (:class:`~agent.detection.Detection`) run in this process, or with
``pipeline.worker_process`` in a worker process (:mod:`agent.worker`) while this one polls the
next batch. Either way a batch's outcome is applied here, in order, the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from prometheus_client import CollectorRegistry

from agent.config import AgentConfig
from agent.detection import BatchOutcome, Detection
from agent.events import DecodeError, RawRecord
from agent.exceptions import StartupError, WorkerError
from agent.health import Health
from agent.hot_loop import tuned_gc
from agent.http import MetricsServer
from agent.metrics import AgentMetrics
from agent.sink import KafkaSink
from agent.source import (
    KafkaSource,
    Partition,
    PartitionBatch,
    connect_with_backoff,
    records_of,
)
from agent.worker import DetectionWorker, replay

log = logging.getLogger(__name__)

#: How often the consumer-lag gauges are refreshed.
_LAG_INTERVAL_SECONDS = 1.0
#: The longest the loop polls Kafka while the worker holds batches, in milliseconds: how late
#: an outcome may be seen.
_SLICE_MS = 10


@dataclass
class _InflightBatch:
    #: The sends of the batch's results and dead letters; None while the worker detects it.
    futures: list[FutureRecordMetadata] | None
    next_offsets: dict[Partition, int]
    #: For each partition, no commit may pass this offset while the batch is unacknowledged:
    #: records released from the join buffer in this batch have offsets at or above it.
    floors: dict[Partition, int] = field(default_factory=dict)
    #: The worker's sequence number of the batch (worker mode only).
    seq: int | None = None

    def done(self) -> bool:
        return self.futures is not None and all(f.is_done for f in self.futures)

    def failure(self) -> Exception | None:
        for f in self.futures or ():
            if f.failed():
                return f.exception
        return None


class Agent:
    """One consumer-group member running the pipeline; :meth:`run` until ``stop`` is set."""

    def __init__(self, config: AgentConfig, registry: CollectorRegistry | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.metrics = AgentMetrics(self.registry, config.model.name, config.model.version)
        self.health = Health()
        #: Decoding and detection in this process; None with ``pipeline.worker_process``,
        #: where :meth:`run` starts a worker process that builds its own.
        self.detection = None if config.pipeline.worker_process else Detection(config, self.metrics)
        self._worker: DetectionWorker | None = None
        self._worker_held: dict[Partition, int] = {}  # its join buffer, as last reported
        self.server: MetricsServer | None = None
        self._inflight: deque[_InflightBatch] = deque()
        self._processed_next: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}
        self._next_commit = 0.0
        self._advanced_since_commit = False

    # -- set-up ---------------------------------------------------------------------------

    def _consumer_kwargs(self) -> dict:
        k = self.config.kafka
        kwargs = {
            "auto_offset_reset": "earliest",
            **k.consumer,
            **k.security.client_kwargs(),
            "bootstrap_servers": list(k.bootstrap_servers),
            "group_id": k.group_id,
            "client_id": k.client_id,
            "enable_auto_commit": False,
        }
        if k.group_instance_id:
            kwargs["group_instance_id"] = k.group_instance_id
        return kwargs

    def _producer_kwargs(self) -> dict:
        k = self.config.kafka
        return {
            "acks": "all",
            "linger_ms": 5,
            **k.producer,
            **k.security.client_kwargs(),
            "bootstrap_servers": list(k.bootstrap_servers),
            "client_id": k.client_id,
        }

    def start_metrics_server(self) -> MetricsServer:
        m = self.config.metrics
        self.server = MetricsServer(self.registry, self.health, m.host, m.port).start()
        log.info("metrics on http://%s:%d/metrics", self.server.host, self.server.port)
        return self.server

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then finish in-flight work, commit and close."""
        p = self.config.pipeline
        k = self.config.kafka
        if self.detection is None:
            self.health.set_ready(False, "starting the detection worker")
            self._worker = DetectionWorker.start(self.config, self.metrics, stop)
        try:
            self.health.set_ready(False, "connecting to Kafka")
            producer = connect_with_backoff(
                lambda timeout_ms: KafkaProducer(
                    **self._producer_kwargs(), bootstrap_timeout_ms=timeout_ms
                ),
                "producer",
                p.startup_retry_max_seconds,
                stop,
            )
            try:
                source = KafkaSource.connect(
                    self._consumer_kwargs(), k.topics, p.startup_retry_max_seconds, stop
                )
            except StartupError:
                producer.close(timeout=1)
                raise
            sink = KafkaSink(producer, k.results_topic, k.dead_letter_topic)
            log.info("consuming %s as group %s", ", ".join(k.topics), k.group_id)
            try:
                with tuned_gc():  # see agent.hot_loop
                    self._consume(source, sink, stop)
            finally:
                self.health.set_ready(False, "stopping")
                self._drain(source, producer, sink)
        finally:
            self._stop_detection()

    @property
    def worker_pid(self) -> int | None:
        """The detection worker's process id while one runs (``pipeline.worker_process``)."""
        return self._worker.pid if self._worker is not None else None

    def _stop_detection(self) -> None:
        """Save the detectors' state (the worker saves its own as it stops)."""
        if self._worker is not None:
            self._worker.stop(timeout_seconds=self.config.pipeline.shutdown_timeout_seconds * 0.4)
        else:
            self.detection.save_state()

    def _consume(self, source: KafkaSource, sink: KafkaSink, stop: threading.Event) -> None:
        """The poll loop proper: poll, process, commit, apply backpressure, report lag."""
        p = self.config.pipeline
        self.health.set_ready(False, "joining the consumer group")
        next_lag = 0.0
        worker = self._worker
        while not stop.is_set():
            if worker is None or worker.stalled_for() < self.health.stall_seconds:
                self.health.beat()
            if len(self._inflight) >= p.max_inflight_batches:
                # Full: wait for the oldest batch rather than pause at once. A paused consumer
                # parks what it has fetched, and its fetches restart only after the resume.
                self._await_oldest(sink, p.poll_timeout_ms / 1000)
                self._commit_completed(source)
            if len(self._inflight) >= p.max_inflight_batches:
                source.pause()  # still full after a poll timeout: poll paused, stay in the group
            elif source.paused:
                source.resume()
            # With batches at the worker, poll in short slices, looking at the worker between
            # them: a fetch answered meanwhile is taken at once, an outcome within a slice.
            detecting = worker is not None and worker.outstanding > 0
            timeout_ms = min(p.poll_timeout_ms, _SLICE_MS) if detecting else p.poll_timeout_ms
            batches = source.poll(0 if source.paused else timeout_ms, p.max_batch_records)
            self._forget(source.take_revoked())
            if source.has_joined:
                self.health.set_ready(True)
            if worker is None:
                if batches or self.detection.pending_joins:
                    self._process(records_of(batches), sink)
            else:
                if batches or worker.pending_joins:
                    self._submit(batches)
                self._collect(sink, 0.0)
            self._commit_completed(source)
            now = time.monotonic()
            if now >= next_lag:
                next_lag = now + _LAG_INTERVAL_SECONDS
                for (topic, partition), lag in source.lags().items():
                    self.metrics.set_lag(topic, partition, lag)

    def _await_oldest(self, sink: KafkaSink, wait_seconds: float) -> None:
        """Wait up to ``wait_seconds`` for the oldest in-flight batch: for the worker's outcome
        of it, then for the acknowledgements of what it sent."""
        deadline = time.monotonic() + wait_seconds
        oldest = self._inflight[0]
        if oldest.futures is None:  # still at the worker
            self._collect(sink, wait_seconds)
        if oldest.futures:
            sink.await_acks(oldest.futures, deadline - time.monotonic())

    def _process(self, records: list[RawRecord], sink: KafkaSink) -> None:
        """Detect a batch in this process and send what it gave."""
        batch = _InflightBatch(None, _next_offsets(records))
        outcome = self.detection.process(records)
        self._apply(batch, outcome, sink)
        if batch.futures or batch.next_offsets:
            self._inflight.append(batch)

    def _submit(self, batches: list[PartitionBatch]) -> None:
        """Hand a poll's batches to the worker; their place in the commit order is taken now."""
        seq = self._worker.submit(batches)
        next_offsets = {(b.topic, b.partition): b.next_offset for b in batches}
        self._inflight.append(_InflightBatch(None, next_offsets, seq=seq))

    def _collect(self, sink: KafkaSink, wait_seconds: float) -> None:
        """Apply the worker's outcomes that have arrived (waiting up to ``wait_seconds``)."""
        for seq, outcome in self._worker.collect(wait_seconds):
            batch = next((b for b in self._inflight if b.seq == seq), None)
            if batch is None:  # dropped by a rewind: its records will be read again
                replay(outcome.metric_calls, self.metrics)
                continue
            self._worker_held = outcome.held
            self._apply(batch, outcome, sink)

    def _apply(self, batch: _InflightBatch, outcome: BatchOutcome, sink: KafkaSink) -> None:
        """Send a batch's dead letters and results, and count it."""
        started = time.perf_counter()
        replay(outcome.metric_calls, self.metrics)
        futures = [self._dead_letter(sink, record, error) for record, error in outcome.dead_letters]
        futures.extend(sink.send_result(result) for result in outcome.results)
        batch.futures = futures
        batch.floors = outcome.floors
        self.metrics.count_flags(result.flags for result in outcome.results)
        if outcome.empty and not batch.next_offsets:  # a turn that only expired nothing
            return
        self.metrics.count_events("processed", outcome.events - outcome.incomplete)
        self.metrics.count_events("incomplete", outcome.incomplete)
        self.metrics.count_events("dead_letter", len(outcome.dead_letters))
        if outcome.last_event_timestamp is not None:
            self.metrics.last_event_timestamp.set(outcome.last_event_timestamp)
        self.metrics.batch_duration.observe(outcome.seconds + time.perf_counter() - started)

    def _dead_letter(self, sink: KafkaSink, record: RawRecord, error: DecodeError):
        self.metrics.count_dead_letter(error.reason)
        log.debug("dead letter %s-%d@%d: %s", record.topic, record.partition, record.offset, error)
        return sink.send_dead_letter(record, error)

    def _commit_completed(self, source: KafkaSource, sync: bool = False) -> None:
        """Commit what every acknowledged batch at the head of the queue made safe."""
        advanced = False  # has any batch completed in this call?
        while self._inflight and self._inflight[0].done():
            batch = self._inflight.popleft()
            error = batch.failure()
            if error is not None:
                self._rewind(source, error)
                return
            for partition, offset in batch.next_offsets.items():
                if offset > self._processed_next.get(partition, -1):
                    self._processed_next[partition] = offset
            advanced = True
        self._advanced_since_commit |= advanced
        if not sync:
            now = time.monotonic()
            if not self._advanced_since_commit or now < self._next_commit:
                return
            self._next_commit = now + self.config.pipeline.commit_interval_seconds
        self._advanced_since_commit = False
        held = self._held_offsets()
        offsets: dict[Partition, int] = {}
        for partition, offset in self._processed_next.items():
            limit = min(
                [offset, held.get(partition, offset)]
                + [b.floors[partition] for b in self._inflight if partition in b.floors]
            )
            if limit > self._committed.get(partition, -1):
                offsets[partition] = limit
        if offsets:
            source.commit(offsets, sync=sync, timeout_ms=5000 if sync else None)
            self._committed.update(offsets)

    def _rewind(self, source: KafkaSource, error: Exception) -> None:
        """A produce failed for good: read everything not yet committed again."""
        log.error("producing results failed (%s); re-reading from the last commit", error)
        self._inflight.clear()
        self._processed_next.clear()
        self._forget_joins(source.assignment())
        for partition in source.assignment():
            offset = self._committed.get(partition)
            if offset is None:
                offset = source.committed(partition)
            if offset is not None:
                source.seek(partition, offset)

    def _forget(self, revoked: set[Partition]) -> None:
        if not revoked:
            return
        log.info("partitions revoked: %s", sorted(revoked))
        self._forget_joins(revoked)
        for partition in revoked:
            self._processed_next.pop(partition, None)
            self._committed.pop(partition, None)
            self.metrics.forget_partition(*partition)
        for batch in self._inflight:
            for partition in revoked:
                batch.next_offsets.pop(partition, None)
                batch.floors.pop(partition, None)

    def _held_offsets(self) -> dict[Partition, int]:
        if self._worker is None:
            return self.detection.held_offsets()
        return self._worker_held

    def _forget_joins(self, partitions) -> None:
        """Drop the join buffer's records of these partitions: they will be read again."""
        partitions = set(partitions)
        if self._worker is None:
            self.detection.forget_partitions(partitions)
            return
        self._worker.forget(sorted(partitions))
        for partition in partitions:
            self._worker_held.pop(partition, None)

    def _drain(self, source: KafkaSource, producer: KafkaProducer, sink: KafkaSink) -> None:
        """Wait for the worker's outcomes and the in-flight results, commit, close both
        clients."""
        deadline = time.monotonic() + self.config.pipeline.shutdown_timeout_seconds * 0.6
        try:
            while self._worker is not None and self._worker.outstanding:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("the detection worker did not finish its batches in time")
                    break
                self._collect(sink, min(left, 0.1))
        except WorkerError as exc:
            log.error("%s", exc)
        try:
            producer.flush(timeout=max(0.1, deadline - time.monotonic()))
        except Exception as exc:
            log.warning("flushing results at shutdown: %s", exc)
        try:
            self._commit_completed(source, sync=True)
        except Exception as exc:
            log.warning("final offset commit failed (records will be read again): %s", exc)
        if self._inflight:
            log.warning(
                "%d batches unacknowledged at shutdown; they will be read again",
                len(self._inflight),
            )
        source.close()
        producer.close(timeout=2)
        log.info(
            "stopped; committed %s",
            {f"{t}-{p}": o for (t, p), o in sorted(self._committed.items())},
        )


def _next_offsets(records: list[RawRecord]) -> dict[Partition, int]:
    """The offset after each partition's last record (polls give each partition's in order)."""
    return {(r.topic, r.partition): r.offset + 1 for r in records}
