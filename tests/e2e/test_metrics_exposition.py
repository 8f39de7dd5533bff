"""The metrics endpoint of a running agent, scraped over HTTP and checked by promtool."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

from agent.demo import traffic
from tests.e2e.harness import AgentProcess, agent_config, create_topics, produce, unique

pytestmark = pytest.mark.e2e

EXPECTED_FAMILIES = (
    "robustwatch_build_info",
    "robustwatch_events_total",
    "robustwatch_dead_letters_total",
    "robustwatch_batch_duration_seconds_bucket",
    "robustwatch_kafka_consumer_lag_records",
    "robustwatch_last_event_timestamp_seconds",
    "robustwatch_drift_detected",
    "robustwatch_drift_p_value",
    "robustwatch_drift_statistic",
    "robustwatch_feature_drift_p_value",
    "robustwatch_detector_errors_total",
    "robustwatch_drift_skipped_events_total",
)


def _probabilities(x: np.ndarray) -> np.ndarray:
    e = np.exp(x[:, :3] - x[:, :3].max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).round(6)


@pytest.fixture(scope="module")
def exposition(broker, tmp_path_factory) -> str:
    tmp_path = tmp_path_factory.mktemp("exposition")
    rng = np.random.default_rng(5)
    x_ref = rng.normal(size=(300, 4))
    np.savez(tmp_path / "reference.npz", x=x_ref, outputs=_probabilities(x_ref))
    topic = unique("expo")
    config = agent_config(
        broker.bootstrap_servers,
        topic,
        tmp_path,
        reference={"path": str(tmp_path / "reference.npz")},
        detectors={"drift": [{"type": "ks", "window": 50}, {"type": "output-class", "window": 50}]},
    )
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])
    x = rng.normal(size=(300, 4)) + 3
    outputs = _probabilities(x)
    records = [traffic.plain_json(f"e{i}", x[i], outputs[i]) for i in range(300)]
    records.append((b"bad", b"{", []))
    produce(broker.bootstrap_servers, topic, records)
    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        agent.wait_metric("robustwatch_events_total", 300, outcome="processed")
        agent.wait_metric("robustwatch_dead_letters_total", 1)
        agent.wait_metric("robustwatch_drift_detected", 1, detector="ks")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, text = agent.get("/metrics")
            assert status == 200
            if "robustwatch_kafka_consumer_lag_records{" in text:
                return text
            time.sleep(0.2)
        raise AssertionError("no consumer-lag sample in the exposition:\n" + text)
    finally:
        assert agent.stop() == 0, agent.log()


def test_exposition_has_every_family_of_the_contract(exposition):
    for family in EXPECTED_FAMILIES:
        assert f"\n{family}" in exposition, family
    assert 'robustwatch_drift_detected{detector="ks",model="digits"} 1.0' in exposition
    assert 'robustwatch_dead_letters_total{reason="invalid-json"} 1.0' in exposition


def test_exposition_passes_promtool_check_metrics(exposition):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not found: install it with `apt-get install prometheus` "
            "(make test does so when run as root)"
        )
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition.encode(), capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
