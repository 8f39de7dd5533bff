"""Several drift detectors configured as a list, on drifted traffic through a real broker."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax

from agent.demo import traffic
from tests.e2e.harness import AgentProcess, agent_config, create_topics, produce, read_topic, unique

pytestmark = pytest.mark.e2e

N_FEATURES = 4
N_CLEAN = 200
N_DRIFTED = 400
DETECTORS = [
    {"type": "ks", "window": 100},
    {"type": "mmd", "name": "mmd-fast", "window": 100, "n_permutations": 30, "device": "cpu"},
    {"type": "mmd-online", "ert": 50, "window_size": 10, "n_bootstraps": 1000},
    {"type": "output-entropy", "window": 100},
]
FLAGS = {"drift:ks", "drift:mmd-fast", "drift:mmd-online", "drift:output-entropy"}


def _outputs(x: np.ndarray) -> np.ndarray:
    return softmax(np.stack([3 * x[:, 0], x[:, 1], -3 * x[:, 0]], axis=1), axis=1)


def test_listed_detectors_flag_drifted_events_and_export_their_metrics(broker, tmp_path):
    rng = np.random.default_rng(11)
    x_ref = rng.normal(size=(600, N_FEATURES))
    np.savez(tmp_path / "reference.npz", x=x_ref, outputs=_outputs(x_ref))
    topic = unique("drift")
    config = agent_config(
        broker.bootstrap_servers,
        topic,
        tmp_path,
        reference={"path": str(tmp_path / "reference.npz")},
        detectors={"drift": DETECTORS},
    )
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])
    x = np.concatenate(
        [rng.normal(size=(N_CLEAN, N_FEATURES)), rng.normal(size=(N_DRIFTED, N_FEATURES)) * 0.3]
    ).round(4)
    outputs = _outputs(x).round(6)
    outputs /= outputs.sum(1, keepdims=True)
    ids = [f"d{i}" for i in range(len(x))]
    records = [traffic.plain_json(ids[i], x[i], outputs[i]) for i in range(len(x))]
    records.append(traffic.plain_json("no-outputs", rng.normal(size=N_FEATURES)))
    produce(broker.bootstrap_servers, topic, records)

    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        agent.wait_metric("robustwatch_events_total", len(records), outcome="processed")
        for detector in ("ks", "mmd-fast", "mmd-online", "output-entropy"):
            agent.wait_metric("robustwatch_drift_detected", 1, timeout=10, detector=detector)
        _, exposition = agent.get("/metrics")
    finally:
        assert agent.stop() == 0, agent.log()

    results = {r.key.decode(): json.loads(r.value) for r in read_topic(
        broker.bootstrap_servers, k["results_topic"], len(records))}  # fmt: skip
    assert set(results) == {*ids, "no-outputs"}
    last = results[ids[-1]]
    assert set(last["flags"]) == FLAGS
    assert set(last["scores"]) == FLAGS
    assert last["scores"]["drift:ks"] < 0.05 and last["scores"]["drift:mmd-fast"] <= 0.05
    assert "drift:output-entropy" not in results["no-outputs"]["scores"]
    assert not any(f.startswith("error:") for r in results.values() for f in r["flags"])

    for line in (
        'robustwatch_drift_p_value{detector="ks",model="digits"}',
        'robustwatch_drift_p_value{detector="mmd-fast",model="digits"}',
        'robustwatch_drift_statistic{detector="mmd-online",model="digits"}',
        'robustwatch_feature_drift_p_value{detector="ks",feature="3",model="digits"}',
        'robustwatch_detector_errors_total{detector="mmd-online",model="digits"} 0.0',
        'robustwatch_drift_skipped_events_total{detector="output-entropy",model="digits",'
        'reason="no-outputs"} 1.0',
    ):
        assert line in exposition, line
    assert 'robustwatch_drift_p_value{detector="mmd-online"' not in exposition
