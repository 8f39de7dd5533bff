"""Every wire format, end to end: 5,000 events in, every id out, metrics that match."""

from __future__ import annotations

import numpy as np
import pytest

from agent.demo import traffic
from tests.e2e.harness import AgentProcess, agent_config, create_topics, produce, read_topic, unique

pytestmark = pytest.mark.e2e

N_EVENTS = 5000
N_FEATURES = 8


@pytest.mark.parametrize(
    ("fmt", "worker_process"),
    [
        ("plain-json", False),
        ("oip-json", False),
        ("kserve-cloudevents", False),
        # The join buffer and the detectors in a worker process (pipeline.worker_process).
        ("plain-json", True),
        ("kserve-cloudevents", True),
    ],
    ids=["plain-json", "oip-json", "kserve-cloudevents", "plain-json-worker", "kserve-worker"],
)
def test_every_event_reaches_the_results_topic(broker, tmp_path, fmt, worker_process):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_EVENTS, N_FEATURES)).round(4)
    probs = rng.dirichlet(np.ones(3), size=N_EVENTS).round(4)
    ids = [f"{fmt}-{i}" for i in range(N_EVENTS)]
    topic = unique(fmt)
    config = agent_config(broker.bootstrap_servers, topic, tmp_path)
    config["kafka"]["format"] = "auto" if fmt == "plain-json" else fmt
    config["pipeline"] = {"worker_process": worker_process}
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])
    records = [r for i, eid in enumerate(ids) for r in traffic.encode(fmt, eid, x[i], probs[i])]
    produce(broker.bootstrap_servers, topic, records)

    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        agent.wait_metric("robustwatch_events_total", N_EVENTS, outcome="processed")
        results = read_topic(broker.bootstrap_servers, k["results_topic"], N_EVENTS)
        assert agent.metric("robustwatch_events_total", outcome="processed") == N_EVENTS
        assert agent.metric("robustwatch_events_total", outcome="dead_letter") == 0
        assert agent.metric("robustwatch_events_total", outcome="incomplete") == 0
        assert agent.metric("robustwatch_dead_letters_total") == 0
        assert agent.metric("robustwatch_last_event_timestamp_seconds") > 0
        assert agent.metric("robustwatch_batch_duration_seconds_count") >= 1
        assert agent.get("/healthz")[0] == 200
    finally:
        assert agent.stop() == 0, agent.log()

    keys = {r.key.decode() for r in results}
    assert keys == set(ids)
    assert len(results) == N_EVENTS  # a clean run with no crash produces no duplicates
    sample = results[0].value
    assert b'"model":"' in sample and b'"flags":[' in sample and b'"processed_at":' in sample
