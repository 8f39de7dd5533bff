"""Delivery guarantees: at-least-once across SIGKILLs, and a clean SIGTERM."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from agent.demo import traffic
from tests.e2e.harness import (
    AgentProcess,
    agent_config,
    committed_offsets,
    create_topics,
    produce,
    read_topic,
    unique,
)

pytestmark = pytest.mark.e2e

N_FEATURES = 8


def _events(prefix: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).round(4)
    return [traffic.plain_json(f"{prefix}-{i}", x[i]) for i in range(n)]


WORKER = pytest.mark.parametrize("worker_process", [False, True], ids=["one-process", "worker"])


@WORKER
def test_every_event_survives_three_sigkills(broker, tmp_path, worker_process):
    topic = unique("kill")
    config = agent_config(broker.bootstrap_servers, topic, tmp_path)
    config["kafka"]["group_instance_id"] = "worker-0"
    # Small batches so that a kill always lands with work in flight.
    config["pipeline"] = {"max_batch_records": 50, "worker_process": worker_process}
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])
    n_total, n_chunks = 12_000, 12
    records = _events("ev", n_total, seed=2)
    chunk = n_total // n_chunks

    def keep_producing():  # traffic keeps arriving while the agent dies and comes back
        for start in range(0, n_total, chunk):
            produce(broker.bootstrap_servers, topic, records[start : start + chunk])
            time.sleep(0.3)

    producer = threading.Thread(target=keep_producing)
    producer.start()
    rng = np.random.default_rng(3)
    try:
        for round_ in range(3):
            agent = AgentProcess(config, tmp_path, name=f"agent-{round_}").start()
            agent.wait_ready(timeout=60)
            seen = agent.metric("robustwatch_events_total", outcome="processed")
            agent.wait_metric(
                "robustwatch_events_total", seen + rng.integers(200, 1500), outcome="processed"
            )
            agent.kill()
        producer.join()
        agent = AgentProcess(config, tmp_path, name="agent-final").start()
        agent.wait_ready(timeout=60)
        results = read_topic(
            broker.bootstrap_servers, k["results_topic"], n_total, timeout=120, settle=3.0
        )
        assert agent.stop() == 0, agent.log()
    finally:
        producer.join()
    produced_ids = {key.decode() for key, _, _ in records}
    result_ids = {r.key.decode() for r in results}
    missing = produced_ids - result_ids
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert len(results) >= n_total


@WORKER
def test_sigterm_exits_zero_with_offsets_committed_for_what_was_processed(
    broker, tmp_path, worker_process
):
    topic = unique("term")
    config = agent_config(broker.bootstrap_servers, topic, tmp_path)
    config["pipeline"] = {"max_batch_records": 100, "worker_process": worker_process}
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])
    n_total = 20_000
    produce(broker.bootstrap_servers, topic, _events("t", n_total, seed=4))

    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    agent.wait_metric("robustwatch_events_total", 2000, outcome="processed")
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    code = agent.process.wait(15)
    elapsed = time.monotonic() - started
    assert code == 0, agent.log()
    assert elapsed < 10, f"took {elapsed:.1f} s to stop"

    committed = committed_offsets(broker.bootstrap_servers, k["group_id"], topic)
    n_committed = sum(o or 0 for o in committed.values())
    results = read_topic(broker.bootstrap_servers, k["results_topic"], n_committed, settle=2.0)
    # emit: all gives one result per processed event: the committed offsets cover exactly
    # the events whose results were produced, no more (nothing lost) and no less.
    assert 0 < n_committed < n_total, "stopped mid-stream"
    assert len(results) == n_committed
    assert len({r.key for r in results}) == n_committed

    # A restart resumes from the commits: the rest is processed once, nothing twice.
    agent = AgentProcess(config, tmp_path, name="agent-2").start()
    agent.wait_ready()
    agent.wait_metric("robustwatch_events_total", n_total - n_committed, outcome="processed")
    results = read_topic(broker.bootstrap_servers, k["results_topic"], n_total, settle=2.0)
    assert agent.stop() == 0
    assert len(results) == n_total
    assert len({r.key for r in results}) == n_total
