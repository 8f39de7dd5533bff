"""The drift metric families of AgentMetrics."""

import math

import numpy as np
from prometheus_client import CollectorRegistry

from agent.metrics import SKIP_REASONS, AgentMetrics


def _value(registry, name, **labels):
    return registry.get_sample_value(name, {"model": "m", **labels})


def test_drift_families_are_registered_with_their_labels():
    registry = CollectorRegistry()
    metrics = AgentMetrics(registry, "m", None)
    metrics.watch_detector("out", SKIP_REASONS)
    families = {f.name: (f.type, f.samples) for f in registry.collect()}
    for name in ("robustwatch_drift_detected", "robustwatch_drift_p_value",
                 "robustwatch_drift_statistic", "robustwatch_feature_drift_p_value"):  # fmt: skip
        assert families[name][0] == "gauge", name
    assert families["robustwatch_detector_errors"][0] == "counter"
    assert families["robustwatch_drift_skipped_events"][0] == "counter"
    # Counters start at 0, so that rate() sees the first error.
    assert _value(registry, "robustwatch_detector_errors_total", detector="out") == 0
    for reason in SKIP_REASONS:
        labels = {"detector": "out", "reason": reason}
        assert _value(registry, "robustwatch_drift_skipped_events_total", **labels) == 0


def test_set_drift_sets_only_what_the_detector_reports():
    registry = CollectorRegistry()
    metrics = AgentMetrics(registry, "m", None)
    metrics.set_drift("ks", True, 0.001, 0.4, np.array([0.0005, 0.3]), ["3", "7"])
    assert _value(registry, "robustwatch_drift_detected", detector="ks") == 1
    assert _value(registry, "robustwatch_drift_p_value", detector="ks") == 0.001
    assert _value(registry, "robustwatch_drift_statistic", detector="ks") == 0.4
    feature = "robustwatch_feature_drift_p_value"
    assert _value(registry, feature, detector="ks", feature="7") == 0.3
    metrics.set_drift("ks", False, 0.2, 0.1, np.array([0.6, 0.2]), ["3", "7"])  # the next window
    assert _value(registry, feature, detector="ks", feature="3") == 0.6
    assert _value(registry, feature, detector="ks", feature="7") == 0.2
    metrics.set_drift("ks", False, 0.2, 0.1, np.array([0.9]), ["12"])  # other features
    assert _value(registry, feature, detector="ks", feature="12") == 0.9
    assert _value(registry, feature, detector="ks", feature="7") == 0.2
    metrics.set_drift("psi", False, None, 0.1)  # a distance: no p-value
    assert _value(registry, "robustwatch_drift_p_value", detector="psi") is None
    metrics.set_drift("mmd-online", False, None, math.nan)  # an online detector, filling
    assert _value(registry, "robustwatch_drift_statistic", detector="mmd-online") is None
    assert _value(registry, "robustwatch_drift_detected", detector="mmd-online") == 0
    metrics.count_detector_error("ks")
    metrics.count_drift_skipped("out", "no-outputs", 3)
    metrics.count_drift_skipped("out", "bad-shape", 0)
    assert _value(registry, "robustwatch_detector_errors_total", detector="ks") == 1
    skipped = "robustwatch_drift_skipped_events_total"
    assert _value(registry, skipped, detector="out", reason="no-outputs") == 3
    assert _value(registry, skipped, detector="out", reason="bad-shape") is None
