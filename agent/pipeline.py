"""Micro-batches of events through the detectors, into one result record per event.

The pipeline is the only place that knows which detectors run; it holds their streaming state
(sliding windows) and turns their answers into :class:`ResultRecord` objects. It does no I/O:
the runner feeds it decoded events and produces what it returns.

Stream adapters turn the detector families into :class:`StreamDetector` objects:
:class:`WindowedDrift` runs a batch drift detector over a sliding window, :class:`OnlineDrift`
feeds an online one event by event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
from pydantic_core import to_json

from agent.events import InferenceEvent
from detectors.drift import DriftResult, OnlineDriftResult
from detectors.exceptions import DataError

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
    #: Why a detector could not judge the event, by detector name (flag ``error:<name>``).
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_json(self) -> bytes:
        """The record as JSON; ``errors`` appears only when a detector failed on the event."""
        body = {
            "id": self.id,
            "model": self.model,
            "model_version": self.model_version,
            "flags": list(self.flags),
            "scores": self.scores,
            "processed_at": self.processed_at,
        }
        if self.errors:
            body["errors"] = self.errors
        # pydantic-core's serializer: the stdlib's compact JSON, ASCII-escaped as it is, in a
        # sixth of the time (a record per event with emit: all)
        return to_json(body, ensure_ascii=True)


class EncodedResult(NamedTuple):
    """A result as it is produced: the event id (the record's key), its flags (for the
    metrics) and :meth:`ResultRecord.to_json`.

    Detection hands results on in this form: from a worker process a tuple of bytes crosses
    the pipe in a seventh of a :class:`ResultRecord`'s pickling time.
    """

    id: str
    flags: tuple[str, ...]
    value: bytes

    @classmethod
    def of(cls, result: ResultRecord) -> EncodedResult:
        return cls(result.id, result.flags, result.to_json())


@dataclass(frozen=True, slots=True)
class Verdict:
    """One detector's answer for one event: a flag (or None), the scores to report, and for a
    flag ``error:<name>`` the reason.

    Verdicts are shared between the rows of a chunk: never mutate one.
    """

    flag: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None


NO_VERDICT = Verdict()


class StreamDetector(Protocol):
    """A detector as the pipeline drives it: a batch of input rows in, one verdict per row.

    ``inputs`` has shape (n_events, n_features), float64. A detector with an attribute
    ``reads = "outputs"`` is given the events' outputs instead: a list with, per event, its
    1-D outputs array or None; one with ``reads = "queries"`` the pair (inputs, the events'
    client ids). An exception flags every event of the call ``error:<name>``, with the
    exception as the reason.
    """

    name: str

    def process(self, inputs: np.ndarray) -> list[Verdict]: ...


class WindowedDrift:
    """Run a batch drift test over a sliding window of the most recent events.

    Each micro-batch is appended to a window of the last ``window`` rows (in chunks of at most
    ``window`` rows), and once the window is full it is tested against the detector's reference
    after every chunk. Every row thus lies in the window whose test it takes: flag
    ``drift:<name>`` when that window is found drifted, and as score either way the window's
    p-value, or its statistic for a detector without p-values (a distance). Under load
    micro-batches are large and tests rare; under light load a test runs per small batch, which
    the low rate affords. The first ``window - 1`` rows, before the window has filled, carry no
    verdict.

    ``detector`` is any batch drift detector: ``test(x) -> DriftResult``. Rows with another
    feature count than the window's raise :class:`~detectors.exceptions.DataError` before they
    enter it.
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
            score = result.statistic if result.p_value is None else result.p_value
            verdicts.extend([Verdict(flag, {self.flag: float(score)})] * len(chunk))
        return verdicts

    def _append(self, rows: np.ndarray) -> None:
        """Write at most ``window`` rows into the ring buffer."""
        if self._buffer is None:
            self._buffer = np.empty((self.window, rows.shape[1]), dtype=np.float64)
        elif rows.shape[1] != self._buffer.shape[1]:
            raise DataError(
                f"events with {rows.shape[1]} features reached the window of {self.name}, "
                f"which holds {self._buffer.shape[1]}"
            )
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


class OnlineDrift:
    """Feed an online drift detector, one step per event, each event taking its own step's
    verdict.

    A micro-batch is one ``update`` call; an event whose step's statistic exceeds that step's
    threshold is flagged ``drift:<name>``, and every event scores its step's statistic. Events
    that only fill the detector's window after ``fit`` (the first ``warmup``) carry no verdict.

    ``detector`` is any online drift detector: ``update(x) -> OnlineDriftResult``.
    """

    def __init__(
        self,
        detector,
        name: str,
        on_result: Callable[[str, OnlineDriftResult], None] | None = None,
    ):
        self.detector = detector
        self.name = name
        self.flag = f"drift:{name}"
        self._on_result = on_result
        self.last_result: OnlineDriftResult | None = None

    def process(self, inputs: np.ndarray) -> list[Verdict]:
        result = self.detector.update(inputs)
        self.last_result = result
        if self._on_result is not None:
            self._on_result(self.name, result)
        stats = result.step_statistics
        alarms = (stats > result.step_thresholds).tolist()
        flag = self.flag
        return [
            Verdict(flag if alarm else None, {flag: s}) if s == s else NO_VERDICT  # NaN: filling
            for alarm, s in zip(alarms, stats.tolist(), strict=True)
        ]


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
        runs: list[np.ndarray] | None = None
        outputs: list[np.ndarray | None] | None = None
        for detector in self.detectors:
            if getattr(detector, "reads", "inputs") == "outputs":
                if outputs is None:
                    outputs = [event.outputs for event in events]
                per_detector.append(_run(detector, outputs, len(outputs)))
                continue
            if runs is None:
                runs = _input_runs(events)
            queries = getattr(detector, "reads", "inputs") == "queries"
            verdicts = []
            start = 0
            for rows in runs:
                stop = start + len(rows)
                if queries:
                    clients = [event.client_id for event in events[start:stop]]
                    verdicts.extend(_run(detector, (rows, clients), len(rows)))
                else:
                    verdicts.extend(_run(detector, rows, len(rows)))
                start = stop
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
            errors: dict[str, str] = {}
            for detector, verdicts in zip(self.detectors, per_detector, strict=True):
                verdict = verdicts[i]
                scores.update(verdict.scores)
                if verdict.error is not None:
                    errors[detector.name] = verdict.error
            results.append(
                ResultRecord(
                    event.id,
                    event.model or self.model,
                    event.model_version or self.model_version,
                    flags,
                    scores,
                    now,
                    errors,
                )
            )
        return results


def _input_runs(events: Sequence[InferenceEvent]) -> list[np.ndarray]:
    """The events' inputs as one (n, n_features) array, or, when feature counts differ (only
    possible when no reference fixed them), one array per run of equal counts, in order."""
    rows = [event.inputs for event in events]
    try:
        # np.array, not np.stack: one C call for equal rows (np.stack reshapes each in Python,
        # three times the cost); ragged rows raise ValueError either way
        return [np.array(rows).astype(np.float64, copy=False)]
    except ValueError:
        runs, start = [], 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i].shape != rows[start].shape:
                runs.append(np.stack(rows[start:i]).astype(np.float64, copy=False))
                start = i
        return runs


def _run(detector: StreamDetector, data, n: int) -> list[Verdict]:
    try:
        return detector.process(data)
    except Exception as exc:  # a detector failure never stops the agent
        log.warning("detector %s failed on a batch of %d: %s", detector.name, n, exc)
        return [Verdict(f"error:{detector.name}", error=error_reason(exc))] * n


def error_reason(exc: BaseException, limit: int = 300) -> str:
    r"""A one-line reason for a result's ``errors``: the exception's type, the first line of its
    message and, for a multi-line message (a TorchScript traceback), its last line.

    >>> error_reason(ValueError("bad input"))
    'ValueError: bad input'
    >>> error_reason(RuntimeError("failed:\n  File x, line 3\nValueError: out of range"))
    'RuntimeError: failed: ... ValueError: out of range'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ... ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)
    reason = f"{type(exc).__name__}: {text}"
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."
