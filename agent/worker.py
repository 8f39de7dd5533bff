"""Decoding and detection in a second process, so that Kafka I/O and detection use two cores.

With ``pipeline.worker_process: true`` the runner keeps the Kafka clients, the metrics server,
commits and back-pressure, and hands each poll's records to one worker process, which owns
the :class:`~agent.detection.Detection` (decoder, join buffer, detectors and their state) and
sends back one :class:`~agent.detection.BatchOutcome` per batch, in order. The detectors' metric
reports travel with the outcome as recorded calls (:class:`MetricCalls`) and are replayed on
the agent's registry, so the exposition is the same in both modes.

The two processes talk over two one-way pipes (:func:`multiprocessing.Pipe`), widened to 1 MiB
where Linux allows, so that sending a batch rarely waits for the worker to finish the one before.
Python pickles those messages; both ends are this agent's own processes, so nothing unpickled
comes from outside (a record's value travels as the bytes it was read as).

The worker is started with ``spawn`` (the Kafka clients' threads make ``fork`` unsafe), ignores
SIGINT and SIGTERM (the runner decides when it stops: after the last outcome, when it saves the
stateful detectors' state), and exits when the runner goes away.

Messages, runner to worker: ``("batch", seq, partition batches)``,
``("forget", partitions)``, ``("stop",)``. Worker to runner: ``("ready", calls)`` or
``("error", message)`` once, ``("outcome", seq, outcome)`` per batch, ``("stopped",)`` last.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from agent.config import AgentConfig
from agent.detection import BatchOutcome, Detection
from agent.exceptions import StartupError, WorkerError
from agent.hot_loop import tuned_gc
from agent.logs import configure_logging
from agent.source import Partition, PartitionBatch, records_of

log = logging.getLogger(__name__)

#: The AgentMetrics methods a detector may call; the recorder refuses any other name.
FORWARDED_METRICS = frozenset(
    (
        "set_drift",
        "watch_detector",
        "count_detector_error",
        "watch_flag",
        "observe_scores",
        "set_stateful",
        "count_drift_skipped",
    )
)


class MetricCalls:
    """Stands in for :class:`~agent.metrics.AgentMetrics` in the worker: records each call for
    the runner to replay with :func:`replay`.

    >>> calls = MetricCalls()
    >>> on_error = calls.count_detector_error  # a callback, bound once at set-up
    >>> on_error("ks")
    >>> calls.take()
    [('count_detector_error', ('ks',), {})]
    >>> on_error("psi")
    >>> calls.take()
    [('count_detector_error', ('psi',), {})]
    """

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        if name not in FORWARDED_METRICS:
            raise AttributeError(
                f"MetricCalls forwards only {sorted(FORWARDED_METRICS)}; add {name!r} to "
                "FORWARDED_METRICS if detectors in a worker process must report it"
            )

        def record(*args, **kwargs) -> None:  # bound callbacks outlive take(): look up the list
            self._calls.append((name, args, kwargs))

        return record

    def take(self) -> list[tuple[str, tuple, dict]]:
        """The calls recorded since the last take, oldest first."""
        calls, self._calls = self._calls, []
        return calls


def replay(calls: Sequence[tuple[str, tuple, dict]], metrics) -> None:
    """Make the recorded calls on the real metrics, in order."""
    for name, args, kwargs in calls:
        if name in FORWARDED_METRICS:
            getattr(metrics, name)(*args, **kwargs)


class DetectionWorker:
    """The runner's handle on the worker process; see the module docstring."""

    def __init__(
        self, process: multiprocessing.process.BaseProcess, sender: Connection, receiver: Connection
    ):
        self._process = process
        self._sender = sender
        self._receiver = receiver
        self._next_seq = 0
        self._outstanding: list[int] = []  # sequence numbers sent, not yet answered
        self._last_progress = time.monotonic()  # an outcome came, or work arrived at an idle one
        self.pending_joins = 0

    @classmethod
    def start(
        cls, config: AgentConfig, metrics, stop: threading.Event, poll_seconds: float = 0.2
    ) -> DetectionWorker:
        """Start the worker and wait until it has built its detectors.

        Their set-up reports are replayed on ``metrics``. Raises :class:`StartupError` when the
        worker cannot build them (the message says why) or dies, or when ``stop`` is set first.
        """
        context = multiprocessing.get_context("spawn")
        inbox, to_worker = context.Pipe(duplex=False)
        ours, outbox = context.Pipe(duplex=False)
        for end in (to_worker, outbox):
            _widen(end)
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        process = context.Process(
            target=serve,
            args=(config, inbox, outbox, level),
            name="robustwatch-detection",
            daemon=True,
        )
        process.start()
        inbox.close()
        outbox.close()
        worker = cls(process, to_worker, ours)
        while not ours.poll(poll_seconds):
            if stop.is_set() or not process.is_alive():
                worker.kill()
                if stop.is_set():
                    raise StartupError("stopped while the detection worker was starting")
                raise StartupError(
                    f"the detection worker exited with code {process.exitcode} while building "
                    "the detectors; its log says why"
                )
        message = worker._receive()
        if message[0] == "error":
            worker.kill()
            raise StartupError(message[1])
        replay(message[1], metrics)
        log.info("detection runs in worker process %d", process.pid)
        return worker

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def outstanding(self) -> int:
        """Batches sent and not yet answered."""
        return len(self._outstanding)

    def stalled_for(self) -> float:
        """Seconds the worker has held a batch without answering any (0 when it holds none):
        a detector stuck in the worker must turn ``/healthz`` red as a stuck poll loop does."""
        if not self._outstanding:
            return 0.0
        return time.monotonic() - self._last_progress

    def submit(self, batches: Sequence[PartitionBatch]) -> int:
        """Send the batches of one poll (maybe none: joins may be due); returns its sequence
        number."""
        if not self._outstanding:
            self._last_progress = time.monotonic()
        seq = self._next_seq
        self._next_seq += 1
        self._send(("batch", seq, list(batches)))
        self._outstanding.append(seq)
        return seq

    def forget(self, partitions: Sequence[Partition]) -> None:
        """Have the worker drop what its join buffer holds of these partitions."""
        self._send(("forget", list(partitions)))

    def collect(self, wait_seconds: float = 0.0) -> list[tuple[int, BatchOutcome]]:
        """Outcomes that have arrived, in order; waits up to ``wait_seconds`` for the first."""
        outcomes: list[tuple[int, BatchOutcome]] = []
        if not self._outstanding or not self._receiver.poll(wait_seconds):
            self._check_alive()
            return outcomes
        while self._outstanding and self._receiver.poll(0):
            message = self._receive()
            if message[0] != "outcome":
                raise WorkerError(f"the detection worker sent {message[0]!r} for a batch")
            _, seq, outcome = message
            expected = self._outstanding.pop(0)
            if seq != expected:
                raise WorkerError(f"the detection worker answered batch {seq}, not {expected}")
            self.pending_joins = outcome.pending_joins
            self._last_progress = time.monotonic()
            outcomes.append((seq, outcome))
        return outcomes

    def stop(self, timeout_seconds: float) -> None:
        """Ask the worker to save its detectors' state and exit; kill it past the timeout."""
        deadline = time.monotonic() + timeout_seconds
        try:
            self._send(("stop",))
            while self._receiver.poll(max(0.0, deadline - time.monotonic())):
                if self._receive()[0] == "stopped":
                    break
        except (WorkerError, OSError) as exc:
            log.warning("stopping the detection worker: %s", exc)
        self._process.join(max(0.1, deadline - time.monotonic()))
        if self._process.is_alive():
            log.warning("the detection worker did not stop in time; killing it")
            self.kill()
        self._sender.close()
        self._receiver.close()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5)

    def _send(self, message: tuple) -> None:
        try:
            self._sender.send(message)
        except (OSError, ValueError) as exc:
            raise WorkerError(self._death(f"cannot reach the detection worker: {exc}")) from None

    def _receive(self) -> tuple:
        try:
            return self._receiver.recv()
        except (EOFError, OSError) as exc:
            raise WorkerError(self._death(f"the detection worker went away: {exc!r}")) from None

    def _check_alive(self) -> None:
        if not self._process.is_alive():
            raise WorkerError(self._death("the detection worker is gone"))

    def _death(self, what: str) -> str:
        self._process.join(1)
        return (
            f"{what} (exit code {self._process.exitcode}); the records it held are not "
            "committed and will be read again after a restart"
        )


def _widen(end: Connection, size: int = 1 << 20) -> None:
    """Raise a pipe's capacity to ``size`` bytes where the OS allows (Linux, up to
    /proc/sys/fs/pipe-max-size); elsewhere a large message only makes its sender wait."""
    try:
        fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (AttributeError, OSError) as exc:
        log.debug("pipe capacity left as is: %s", exc)


def serve(
    config: AgentConfig, inbox: Connection, outbox: Connection, log_level: str = "INFO"
) -> None:
    """The worker process: build the detection, then answer the runner until it says stop.

    It reads the runner's messages from ``inbox``, answers on ``outbox``, and logs at the
    runner's level (``log_level``), in the configured format.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level, config.logging.format)
    calls = MetricCalls()
    try:
        detection = Detection(config, calls)
    except Exception as exc:
        message = str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
        outbox.send(("error", f"building the detectors failed: {message}"))
        return
    try:
        outbox.send(("ready", calls.take()))
        with tuned_gc():  # see agent.hot_loop
            _answer(detection, calls, inbox, outbox)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the runner is gone (killed): nothing to report to, its records are read again


def _answer(
    detection: Detection, calls: MetricCalls, inbox: Connection, outbox: Connection
) -> None:
    """Answer the runner's messages until it says stop."""
    while True:
        message = inbox.recv()
        kind = message[0]
        if kind == "batch":
            outcome = detection.process(records_of(message[2]))
            outcome.metric_calls = calls.take()
            outbox.send(("outcome", message[1], outcome))
        elif kind == "forget":
            detection.forget_partitions(message[1])
        elif kind == "stop":
            detection.save_state()
            outbox.send(("stopped",))
            return
