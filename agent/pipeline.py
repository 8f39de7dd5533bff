"""Micro-batches of events through the detectors, into one result record per event.

The pipeline is the only place that knows which detectors run; it holds their streaming state
(sliding windows) and turns their answers into :class:`ResultRecord` objects. It does no I/O:
the runner feeds it decoded events and produces what it returns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from agent.events import InferenceEvent
from detectors.drift import DriftResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """What the agent says about one event; the value produced to the results topic."""

    id: str
    model: str
    model_version: str | None
    flags: tuple[str, ...]
    scores: dict[str, float]
    processed_at: float

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "model": self.model,
                "model_version": self.model_version,
                "flags": list(self.flags),
                "scores": self.scores,
                "processed_at": self.processed_at,
            },
            separators=(",", ":"),
        ).encode()


@dataclass(frozen=True, slots=True)
class Verdict:
    """One detector's answer for one event: a flag (or None) and the scores to report.

    Verdicts are shared between the rows of a chunk: never mutate one.
    """

    flag: str | None = None
    scores: dict[str, float] = field(default_factory=dict)


NO_VERDICT = Verdict()


class StreamDetector(Protocol):
    """A detector as the pipeline drives it: a batch of input rows in, one verdict per row."""

    name: str

    def process(self, inputs: np.ndarray) -> list[Verdict]: ...


class WindowedDrift:
    """Run a batch drift test over a sliding window of the most recent events.

    Each micro-batch is appended to a window of the last ``window`` rows (in chunks of at most
    ``window`` rows), and once the window is full it is tested against the detector's reference
    after every chunk. Every row thus lies in the window whose test it takes: flag
    ``drift:<name>`` when that window is found drifted, and the window's p-value as score
    either way. Under load micro-batches are large and tests rare; under light load a test
    runs per small batch, which the low rate affords. The first ``window - 1`` rows, before the
    window has filled, carry no verdict.
    """

    def __init__(
        self,
        detector,
        name: str,
        window: int,
        on_result: Callable[[str, DriftResult], None] | None = None,
    ):
        self.detector = detector
        self.name = name
        self.flag = f"drift:{name}"
        self.window = window
        self._on_result = on_result
        self._buffer: np.ndarray | None = None
        self._filled = 0
        self._head = 0
        self.last_result: DriftResult | None = None

    def process(self, inputs: np.ndarray) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for start in range(0, len(inputs), self.window):
            chunk = inputs[start : start + self.window]
            self._append(chunk)
            if self._filled < self.window:
                verdicts.extend([NO_VERDICT] * len(chunk))
                continue
            result = self.detector.test(self._ordered())
            self.last_result = result
            if self._on_result is not None:
                self._on_result(self.name, result)
            flag = self.flag if result.is_drift else None
            verdicts.extend([Verdict(flag, {self.flag: float(result.p_value)})] * len(chunk))
        return verdicts

    def _append(self, rows: np.ndarray) -> None:
        """Write at most ``window`` rows into the ring buffer."""
        if self._buffer is None:
            self._buffer = np.empty((self.window, rows.shape[1]), dtype=np.float64)
        k = len(rows)
        first = min(k, self.window - self._head)
        self._buffer[self._head : self._head + first] = rows[:first]
        self._buffer[: k - first] = rows[first:]
        self._head = (self._head + k) % self.window
        self._filled = min(self.window, self._filled + k)

    def _ordered(self) -> np.ndarray:
        """The full window, oldest row first."""
        assert self._buffer is not None
        return np.concatenate((self._buffer[self._head :], self._buffer[: self._head]))


class Pipeline:
    """Run every stream detector on a micro-batch and build one result per event."""

    def __init__(
        self,
        model: str,
        model_version: str | None,
        detectors: Sequence[StreamDetector],
        clock: Callable[[], float] = time.time,
    ):
        self.model = model
        self.model_version = model_version
        self.detectors = list(detectors)
        self._clock = clock

    def process(
        self, events: Sequence[InferenceEvent], flagged_only: bool = False
    ) -> list[ResultRecord]:
        """One result per event, in order; with ``flagged_only`` only those with a flag.

        Every detector sees every event either way; ``flagged_only`` (``emit: flagged``) only
        spares building results that would not be produced.
        """
        if not events:
            return []
        per_detector: list[list[Verdict]] = []
        if self.detectors:
            inputs = np.stack([event.inputs for event in events]).astype(np.float64, copy=False)
            for detector in self.detectors:
                try:
                    verdicts = detector.process(inputs)
                except Exception as exc:  # a detector failure never stops the agent
                    log.warning(
                        "detector %s failed on a batch of %d: %s", detector.name, len(events), exc
                    )
                    verdicts = [Verdict(f"error:{detector.name}")] * len(events)
                per_detector.append(verdicts)
        if flagged_only:
            indices = sorted(
                {i for verdicts in per_detector for i, v in enumerate(verdicts) if v.flag}
            )
        else:
            indices = range(len(events))
        now = self._clock()
        results = []
        for i in indices:
            event = events[i]
            flags = tuple(v[i].flag for v in per_detector if v[i].flag is not None)
            scores: dict[str, float] = {}
            for verdicts in per_detector:
                scores.update(verdicts[i].scores)
            results.append(
                ResultRecord(
                    event.id,
                    event.model or self.model,
                    event.model_version or self.model_version,
                    flags,
                    scores,
                    now,
                )
            )
        return results
