"""Decoding and detection of one micro-batch, as one step with one typed outcome.

:class:`Detection` owns everything the agent keeps between micro-batches apart from Kafka: the
decoder (with its KServe join buffer) and the pipeline (with its detectors' windows and
stateful indexes). :meth:`Detection.process` turns the records of one poll into a
:class:`BatchOutcome`: the results and dead letters to produce, the counts to export, and the
offsets the join buffer still holds. It does no I/O, so the runner can call it in its own
thread, or hand it to a worker process (:mod:`agent.worker`) and carry the outcome back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.config import AgentConfig
from agent.drift import build_drift_detectors, read_reference
from agent.events import Decoded, DecodeError, EventDecoder, InferenceEvent, RawRecord
from agent.input_detectors import QueryAttackFeed, build_input_detectors
from agent.pipeline import EncodedResult, Pipeline, StreamDetector
from agent.source import Partition

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchOutcome:
    """What processing one micro-batch gave.

    ``floors`` are the offsets the join buffer held before the batch (records it released in
    this batch lie at or above them, per partition); ``held`` those it holds after.
    """

    results: list[EncodedResult]
    dead_letters: list[tuple[RawRecord, DecodeError]]
    #: Events that completed without their join partner (an orphan KServe request).
    incomplete: int
    #: Every event decoded in the batch, incomplete ones included.
    events: int
    last_event_timestamp: float | None
    floors: dict[Partition, int]
    held: dict[Partition, int]
    pending_joins: int
    seconds: float
    #: Metric calls recorded away from the registry (see :class:`agent.worker.MetricCalls`).
    metric_calls: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.events or self.dead_letters)


def load_reference(path: Path) -> np.ndarray:
    """Reference inputs from ``.npy`` or ``.npz`` (key ``x``), as a 2-D float array."""
    return read_reference(path).x


def build_detectors(config: AgentConfig, metrics) -> tuple[list[StreamDetector], int | None]:
    """The stream detectors the config asks for, and the feature count they expect.

    The drift detectors of ``detectors.drift`` (see :mod:`agent.drift`), then the per-input
    and stateful ones (see :mod:`agent.input_detectors`). The feature count is the drift
    reference file's (the decoder dead-letters events of another count), None when no drift
    detector reads a reference file: per-input detectors then flag such events
    ``error:<name>`` themselves.
    """
    drift, n_features = build_drift_detectors(config, metrics)
    return [*drift, *build_input_detectors(config, metrics)], n_features


class Detection:
    """The decoder and the pipeline of one agent; see the module docstring.

    ``metrics`` receives the detectors' reports: the agent's :class:`~agent.metrics.AgentMetrics`
    in the runner's process, a :class:`~agent.worker.MetricCalls` recorder in a worker.
    """

    def __init__(self, config: AgentConfig, metrics) -> None:
        detectors, n_features = build_detectors(config, metrics)
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
        self.flagged_only = k.emit == "flagged"

    def process(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Decode the records (and the join partners that timed out), run every detector, and
        build the results to produce: every event's with ``emit: all``, flagged ones' else."""
        started = time.perf_counter()
        floors = self.decoder.held_offsets()
        dead_letters: list[tuple[RawRecord, DecodeError]] = []
        events: list[InferenceEvent] = []
        incomplete = 0
        for released in self.decoder.expire():
            if released.error is not None:
                dead_letters.append((released.record, released.error))
            incomplete += len(released.events)
            events.extend(released.events)
        for record, decoded in zip(records, self._decode(records), strict=True):
            if decoded.error is not None:
                dead_letters.append((record, decoded.error))
            # A record can be both: a response that does not fit its request is dead-lettered
            # while the request's events go on without outputs.
            events.extend(decoded.events)
        results = self.pipeline.process(events, flagged_only=self.flagged_only)
        return BatchOutcome(
            results=[EncodedResult.of(result) for result in results],
            dead_letters=dead_letters,
            incomplete=incomplete,
            events=len(events),
            last_event_timestamp=max(e.timestamp for e in events) if events else None,
            floors=floors,
            held=self.decoder.held_offsets(),
            pending_joins=self.decoder.pending_joins,
            seconds=time.perf_counter() - started,
        )

    def _decode(self, records: Sequence[RawRecord]) -> list[Decoded]:
        """The records decoded; a codec bug dead-letters the batch rather than stop the agent.

        Decoding the batch again record by record could hand CloudEvents the join buffer
        already took to it a second time, so the whole batch goes to the dead-letter topic,
        reason ``decoder-failure``, where nothing is lost.
        """
        try:
            return self.decoder.decode_batch(records)
        except Exception as exc:
            log.exception("the decoder failed on a batch of %d records", len(records))
            failure = Decoded(
                (), error=DecodeError("decoder-failure", f"{type(exc).__name__}: {exc}")
            )
            return [failure] * len(records)

    @property
    def pending_joins(self) -> int:
        return self.decoder.pending_joins

    def held_offsets(self) -> dict[Partition, int]:
        return self.decoder.held_offsets()

    def forget_partitions(self, partitions: Sequence[Partition]) -> None:
        """Drop what the join buffer holds of these partitions (they will be read again)."""
        self.decoder.forget_partitions(partitions)

    def save_state(self) -> None:
        """Write the state of every detector that keeps one to its file (at shutdown)."""
        for detector in self.pipeline.detectors:
            if isinstance(detector, QueryAttackFeed):
                detector.save_state()
