"""The agent's Prometheus metrics.

Every metric is registered on a :class:`~prometheus_client.CollectorRegistry` that the caller
passes in (never the global one), so each agent and each test has its own. Names follow the
contract in DESIGN.md: prefix ``robustwatch_``, base units, counters end in ``_total``, and no
label takes an unbounded value (never an event id or a client id).
"""

from __future__ import annotations

import contextlib
import math
import platform
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from agent import __version__

if TYPE_CHECKING:
    from detectors.adversarial import StatefulSnapshot

#: Batch durations span a tiny batch on a fast path (~1 ms) to a slow model (~10 s).
BATCH_DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: Buckets of ``robustwatch_detector_score``: conformal p-values, where small is suspicious;
#: dense below 0.1, where flagging thresholds (a detector's ``fpr``) lie.
SCORE_P_VALUE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)

#: Outcomes an event read from Kafka can have; the values of the ``outcome`` label.
OUTCOMES = ("processed", "dead_letter", "incomplete")

#: Why a drift detector reading outputs passed an event by; the values of the ``reason`` label.
SKIP_REASONS = ("no-outputs", "bad-shape", "bad-value")


class AgentMetrics:
    """The metric families the agent updates, bound to one registry and one model."""

    def __init__(self, registry: CollectorRegistry, model: str, model_version: str | None):
        self.model = model
        self.registry = registry
        self._feature_p_values: dict[tuple[str, tuple[str, ...]], list] = {}
        build = Info(
            "robustwatch_build",
            "Build of the running robustwatch agent.",
            registry=registry,
        )
        build.info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "model": model,
                "model_version": model_version or "",
            }
        )
        self.events = Counter(
            "robustwatch_events_total",
            "Events read from Kafka, by what became of them.",
            ["model", "outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.events.labels(model, outcome)
        self.dead_letters = Counter(
            "robustwatch_dead_letters_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.batch_duration = Histogram(
            "robustwatch_batch_duration_seconds",
            "Time to decode, detect and produce the results of one micro-batch.",
            buckets=BATCH_DURATION_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "robustwatch_kafka_consumer_lag_records",
            "Records in the partition not yet read by the agent (high-water mark - position).",
            ["topic", "partition"],
            registry=registry,
        )
        self.last_event_timestamp = Gauge(
            "robustwatch_last_event_timestamp_seconds",
            "Unix time of the newest event processed.",
            registry=registry,
        )
        self.drift_detected = Gauge(
            "robustwatch_drift_detected",
            "1 when the detector's latest test found drift, else 0.",
            ["model", "detector"],
            registry=registry,
        )
        self.drift_p_value = Gauge(
            "robustwatch_drift_p_value",
            "p-value of the detector's latest test (corrected for multiple testing).",
            ["model", "detector"],
            registry=registry,
        )
        self.drift_statistic = Gauge(
            "robustwatch_drift_statistic",
            "Statistic of the detector's latest test or online step (a distance for PSI, "
            "Jensen-Shannon, Wasserstein).",
            ["model", "detector"],
            registry=registry,
        )
        self.feature_drift_p_value = Gauge(
            "robustwatch_feature_drift_p_value",
            "Uncorrected p-value of one input feature in the detector's latest test; only for "
            "detectors testing at most metrics.max_feature_series features.",
            ["model", "detector", "feature"],
            registry=registry,
        )
        self.detector_errors = Counter(
            "robustwatch_detector_errors_total",
            "Micro-batches or windows a detector failed on; their events are flagged "
            "error:<detector>.",
            ["model", "detector"],
            registry=registry,
        )
        self.flags = Counter(
            "robustwatch_flags_total",
            "Events that carried a flag, by flag: the detector label holds the flag itself "
            "(drift:ks, adversarial:squeeze, outlier:energy, query-attack, error:<detector>, ...).",
            ["model", "detector"],
            registry=registry,
        )
        self.detector_score = Histogram(
            "robustwatch_detector_score",
            "Per-input detectors' scores as conformal p-values against the detector's clean "
            "calibration scores, (1 + #{calibration scores >= score}) / (n + 1): uniform on clean "
            "traffic, small when suspicious; an event is flagged when its score exceeds the "
            "(1 - fpr) threshold, about p <= fpr. Scale-free, so detectors compare.",
            ["model", "detector"],
            buckets=SCORE_P_VALUE_BUCKETS,
            registry=registry,
        )
        self.query_attack_suspects = Gauge(
            "robustwatch_query_attack_suspects",
            "Clients flagged for a query attack within the stateful detector's time-to-live "
            "(a count: client ids are never labels).",
            registry=registry,
        )
        self.stateful_index_entries = Gauge(
            "robustwatch_stateful_index_entries",
            "Query fingerprints held by the stateful detector within its time-to-live.",
            registry=registry,
        )
        self.drift_skipped_events = Counter(
            "robustwatch_drift_skipped_events_total",
            "Events an output drift detector passed by: no outputs, outputs of another shape "
            "than the reference's, or values it cannot read (NaN, not probabilities).",
            ["model", "detector", "reason"],
            registry=registry,
        )

    def count_events(self, outcome: str, n: int = 1) -> None:
        if n:
            self.events.labels(self.model, outcome).inc(n)

    def count_dead_letter(self, reason: str) -> None:
        self.dead_letters.labels(reason).inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this agent no longer owns."""
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(topic, str(partition))

    def set_drift(
        self,
        detector: str,
        is_drift: bool,
        p_value: float | None,
        statistic: float | None = None,
        feature_p_values: np.ndarray | None = None,
        features: Sequence[str] = (),
    ) -> None:
        """Record a drift detector's latest answer.

        ``p_value`` None (a distance, an online detector) sets no p-value series, nor does a
        NaN ``statistic`` (an online detector filling its window) set the statistic.
        ``feature_p_values`` are exported under the ``feature`` labels ``features``, one each.
        """
        model = self.model
        self.drift_detected.labels(model, detector).set(1.0 if is_drift else 0.0)
        if p_value is not None:
            self.drift_p_value.labels(model, detector).set(p_value)
        if statistic is not None and not math.isnan(statistic):
            self.drift_statistic.labels(model, detector).set(statistic)
        if feature_p_values is not None:
            # labels() takes a lock and checks the labels per call (about 2.5 us): a detector
            # of many features reports them all after every window, so keep its children
            key = (detector, tuple(features))
            children = self._feature_p_values.get(key)
            if children is None:
                gauge = self.feature_drift_p_value
                children = [gauge.labels(model, detector, feature) for feature in features]
                self._feature_p_values[key] = children
            for child, p in zip(children, feature_p_values.tolist(), strict=True):
                child.set(p)

    def watch_detector(self, detector: str, skip_reasons: Sequence[str] = ()) -> None:
        """Start a detector's error counter, and its skip counters, at 0."""
        self.detector_errors.labels(self.model, detector)
        for reason in skip_reasons:
            self.drift_skipped_events.labels(self.model, detector, reason)

    def count_detector_error(self, detector: str) -> None:
        self.detector_errors.labels(self.model, detector).inc()

    def watch_flag(self, flag: str) -> None:
        """Start a flag's counter at 0, and the score histogram of a per-input detector's."""
        self.flags.labels(self.model, flag)
        if flag.startswith(("adversarial:", "outlier:")):
            self.detector_score.labels(self.model, flag)

    def count_flags(self, flag_sets: Iterable[tuple[str, ...]]) -> None:
        """Count the flags of a batch's results, one ``inc`` per flag."""
        counts: dict[str, int] = {}
        for flags in flag_sets:
            for flag in flags:
                counts[flag] = counts.get(flag, 0) + 1
        for flag, n in counts.items():
            self.flags.labels(self.model, flag).inc(n)

    def observe_scores(self, flag: str, p_values: np.ndarray) -> None:
        """Observe a per-input detector's scores, as conformal p-values, in its histogram."""
        histogram = self.detector_score.labels(self.model, flag)
        for p in p_values.tolist():
            histogram.observe(p)

    def set_stateful(self, snapshot: StatefulSnapshot) -> None:
        self.query_attack_suspects.set(snapshot.clients_flagged)
        self.stateful_index_entries.set(snapshot.fingerprints)

    def count_drift_skipped(self, detector: str, reason: str, n: int = 1) -> None:
        if n:
            self.drift_skipped_events.labels(self.model, detector, reason).inc(n)
