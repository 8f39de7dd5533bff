"""The agent's poll loop: Kafka in, decode, detect, results out, offsets committed.

At-least-once, by construction:

* a micro-batch's offsets become committable only once every record it produced (results and
  dead letters) was acknowledged by the brokers;
* a partition's commit never passes a record that is still held for a join, nor one whose
  events ride in a batch not yet acknowledged (see :meth:`Agent._commit_completed`);
* a produce that fails for good rewinds every partition to its last committed offset and
  reads the records again.

Memory stays bounded: at most ``pipeline.max_inflight_batches`` micro-batches wait for their
acknowledgements; beyond that the consumer pauses its partitions (and keeps polling, so it
stays in the group) until the oldest batch is acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from prometheus_client import CollectorRegistry

from agent.config import AgentConfig
from agent.drift import build_drift_detectors, read_reference
from agent.events import Decoded, DecodeError, EventDecoder, InferenceEvent, RawRecord
from agent.exceptions import StartupError
from agent.health import Health
from agent.http import MetricsServer
from agent.input_detectors import QueryAttackFeed, build_input_detectors
from agent.metrics import AgentMetrics
from agent.pipeline import Pipeline, StreamDetector
from agent.sink import KafkaSink
from agent.source import KafkaSource, Partition, connect_with_backoff

log = logging.getLogger(__name__)

#: How often the consumer-lag gauges are refreshed.
_LAG_INTERVAL_SECONDS = 1.0


@dataclass
class _InflightBatch:
    futures: list[FutureRecordMetadata]
    next_offsets: dict[Partition, int]
    #: For each partition, no commit may pass this offset while the batch is unacknowledged:
    #: records released from the join buffer in this batch have offsets at or above it.
    floors: dict[Partition, int] = field(default_factory=dict)

    def done(self) -> bool:
        return all(f.is_done for f in self.futures)

    def failure(self) -> Exception | None:
        for f in self.futures:
            if f.failed():
                return f.exception
        return None


def load_reference(path: Path) -> np.ndarray:
    """Reference inputs from ``.npy`` or ``.npz`` (key ``x``), as a 2-D float array."""
    return read_reference(path).x


def build_detectors(
    config: AgentConfig, metrics: AgentMetrics
) -> tuple[list[StreamDetector], int | None]:
    """The stream detectors the config asks for, and the feature count they expect.

    The drift detectors of ``detectors.drift`` (see :mod:`agent.drift`), then the per-input
    and stateful ones (see :mod:`agent.input_detectors`). The feature count is the drift
    reference file's (the decoder dead-letters events of another count), None when no drift
    detector reads a reference file: per-input detectors then flag such events
    ``error:<name>`` themselves.
    """
    drift, n_features = build_drift_detectors(config, metrics)
    return [*drift, *build_input_detectors(config, metrics)], n_features


class Agent:
    """One consumer-group member running the pipeline; :meth:`run` until ``stop`` is set."""

    def __init__(self, config: AgentConfig, registry: CollectorRegistry | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.metrics = AgentMetrics(self.registry, config.model.name, config.model.version)
        self.health = Health()
        detectors, n_features = build_detectors(config, self.metrics)
        self.pipeline = Pipeline(config.model.name, config.model.version, detectors)
        k = config.kafka
        self.decoder = EventDecoder(
            k.format,
            model_name=config.model.name,
            model_version=config.model.version,
            max_record_bytes=k.max_record_bytes,
            expected_features=n_features,
            client_id_header=k.client_id_header,
            join_ttl_seconds=k.join_ttl_seconds,
            max_pending_joins=k.max_pending_joins,
        )
        self.emit_all = k.emit == "all"
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
            self._consume(source, sink, stop)
        finally:
            self.health.set_ready(False, "stopping")
            self._drain(source, producer)
            for detector in self.pipeline.detectors:
                if isinstance(detector, QueryAttackFeed):
                    detector.save_state()

    def _consume(self, source: KafkaSource, sink: KafkaSink, stop: threading.Event) -> None:
        """The poll loop proper: poll, process, commit, apply backpressure, report lag."""
        p = self.config.pipeline
        self.health.set_ready(False, "joining the consumer group")
        next_lag = 0.0
        while not stop.is_set():
            self.health.beat()
            records = source.poll(p.poll_timeout_ms, p.max_batch_records)
            self._forget(source.take_revoked())
            if source.has_joined:
                self.health.set_ready(True)
            if records or self.decoder.pending_joins:
                self._process(records, sink)
            self._commit_completed(source)
            if len(self._inflight) >= p.max_inflight_batches:
                source.pause()
            elif source.paused:
                source.resume()
            now = time.monotonic()
            if now >= next_lag:
                next_lag = now + _LAG_INTERVAL_SECONDS
                for (topic, partition), lag in source.lags().items():
                    self.metrics.set_lag(topic, partition, lag)

    def _process(self, records: list[RawRecord], sink: KafkaSink) -> None:
        started = time.perf_counter()
        floors = self.decoder.held_offsets()
        futures: list[FutureRecordMetadata] = []
        events: list[InferenceEvent] = []
        incomplete = 0
        dead = 0
        for released in self.decoder.expire():
            if released.error is not None:
                dead += 1
                futures.append(self._dead_letter(sink, released.record, released.error))
            incomplete += len(released.events)
            events.extend(released.events)
        next_offsets: dict[Partition, int] = {}
        for record in records:
            next_offsets[(record.topic, record.partition)] = record.offset + 1
            decoded = self._decode(record)
            if decoded.error is not None:
                dead += 1
                futures.append(self._dead_letter(sink, record, decoded.error))
            # A record can be both: a response that does not fit its request is dead-lettered
            # while the request's events go on without outputs.
            events.extend(decoded.events)
        results = self.pipeline.process(events, flagged_only=not self.emit_all)
        for result in results:
            futures.append(sink.send_result(result))
        self.metrics.count_flags(result.flags for result in results)
        if futures or next_offsets:
            self._inflight.append(_InflightBatch(futures, next_offsets, floors))
        if not (records or events or dead):
            return
        self.metrics.count_events("processed", len(events) - incomplete)
        self.metrics.count_events("incomplete", incomplete)
        self.metrics.count_events("dead_letter", dead)
        if events:
            self.metrics.last_event_timestamp.set(max(e.timestamp for e in events))
        self.metrics.batch_duration.observe(time.perf_counter() - started)

    def _decode(self, record: RawRecord) -> Decoded:
        try:
            return self.decoder.decode(record)
        except Exception as exc:  # a codec bug must not stop the agent
            log.exception(
                "decoder failed on %s-%d@%d", record.topic, record.partition, record.offset
            )
            return Decoded((), error=DecodeError("decoder-failure", f"{type(exc).__name__}: {exc}"))

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
        held = self.decoder.held_offsets()
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
        self.decoder.forget_partitions(source.assignment())
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
        self.decoder.forget_partitions(revoked)
        for partition in revoked:
            self._processed_next.pop(partition, None)
            self._committed.pop(partition, None)
            self.metrics.forget_partition(*partition)
        for batch in self._inflight:
            for partition in revoked:
                batch.next_offsets.pop(partition, None)
                batch.floors.pop(partition, None)

    def _drain(self, source: KafkaSource, producer: KafkaProducer) -> None:
        """Wait for in-flight results, commit them, and close both clients."""
        deadline = time.monotonic() + self.config.pipeline.shutdown_timeout_seconds * 0.6
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
