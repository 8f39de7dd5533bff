"""Poison records: dead-lettered with their reason, counted, committed; the agent lives on."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from agent.demo import traffic
from tests.e2e.harness import (
    AgentProcess,
    agent_config,
    create_topics,
    produce,
    read_topic,
    sample_sum,
    unique,
)

pytestmark = pytest.mark.e2e

N_GOOD = 5000
N_BAD = 500
N_FEATURES = 8
MAX_RECORD_BYTES = 4096


def _malformed(i: int) -> tuple[bytes, bytes, list]:
    """The i-th poison record, cycling through the kinds of bad input."""
    kind = i % 10
    key = f"bad-{i}".encode()
    if kind == 0:
        return key, b"{not json", []
    if kind == 1:
        return key, b"x" * (MAX_RECORD_BYTES + 1), []
    if kind == 2:  # wrong feature count for the reference
        return (*traffic.plain_json(f"bad-{i}", np.zeros(N_FEATURES + 3))[:2], [])
    if kind == 3:  # missing id
        return key, json.dumps({"inputs": [0.0] * N_FEATURES}).encode(), []
    if kind == 4:  # strings where numbers belong
        return key, json.dumps({"id": f"bad-{i}", "inputs": ["a"] * N_FEATURES}).encode(), []
    if kind == 5:  # OIP data that does not fill its shape
        body = traffic.oip_request_body(f"bad-{i}", np.zeros(N_FEATURES))
        body["inputs"][0]["data"] = body["inputs"][0]["data"][:-1]
        return key, json.dumps(body).encode(), []
    if kind == 6:  # OIP with a datatype the agent cannot read
        body = traffic.oip_request_body(f"bad-{i}", np.zeros(N_FEATURES))
        body["inputs"][0]["datatype"] = "BYTES"
        return key, json.dumps(body).encode(), []
    if kind == 7:  # NaN
        return key, b'{"id": "bad-%d", "inputs": [NaN, 1, 2, 3, 4, 5, 6, 7]}' % i, []
    if kind == 8:  # a JSON array, not an object
        return key, b"[1, 2, 3]", []
    return key, b"", []  # empty


@pytest.mark.parametrize("worker_process", [False, True], ids=["one-process", "worker"])
def test_malformed_records_go_to_the_dead_letter_topic(broker, tmp_path, worker_process):
    rng = np.random.default_rng(1)
    x_ref = rng.normal(size=(500, N_FEATURES))
    np.save(tmp_path / "reference.npy", x_ref)
    topic = unique("poison")
    config = agent_config(
        broker.bootstrap_servers,
        topic,
        tmp_path,
        reference={"path": str(tmp_path / "reference.npy")},
        detectors={"drift": {"window": 100}},
        pipeline={"worker_process": worker_process},
    )
    k = config["kafka"]
    k["max_record_bytes"] = MAX_RECORD_BYTES
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])

    good = [
        traffic.plain_json(f"good-{i}", rng.normal(size=N_FEATURES).round(4)) for i in range(N_GOOD)
    ]
    bad = [_malformed(i) for i in range(N_BAD)]
    mixed = list(good)
    for j, record in enumerate(bad):
        mixed.insert((j * 11) % len(mixed), record)
    produce(broker.bootstrap_servers, topic, mixed)

    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        agent.wait_metric("robustwatch_events_total", N_GOOD, outcome="processed")
        agent.wait_metric("robustwatch_events_total", N_BAD, outcome="dead_letter")
        dead = read_topic(broker.bootstrap_servers, k["dead_letter_topic"], N_BAD)
        results = read_topic(broker.bootstrap_servers, k["results_topic"], N_GOOD)
        assert agent.get("/healthz")[0] == 200
        assert agent.metric("robustwatch_dead_letters_total") == N_BAD
        exposition = agent.get("/metrics")[1]
    finally:
        assert agent.stop() == 0, agent.log()

    assert len(dead) == N_BAD
    assert {r.key.decode() for r in results} == {f"good-{i}" for i in range(N_GOOD)}
    reasons = Counter()
    for record in dead:
        headers = dict(record.headers)
        for name in (
            "robustwatch-error",
            "robustwatch-source-topic",
            "robustwatch-source-partition",
            "robustwatch-source-offset",
        ):
            assert name in headers, (name, headers)
        assert headers["robustwatch-source-topic"].decode() == topic
        reason = headers["robustwatch-error-reason"].decode()
        assert headers["robustwatch-error"].decode().startswith(reason + ": ")
        reasons[reason] += 1
    assert reasons["oversized"] == N_BAD // 10
    assert reasons["invalid-json"] == N_BAD // 10 * 2  # not JSON, and a JSON array
    assert reasons["empty"] == N_BAD // 10
    assert reasons["non-finite"] == N_BAD // 10
    assert reasons["bad-shape"] == N_BAD // 10 * 2  # feature count, and OIP data vs shape
    assert sum(reasons.values()) == N_BAD
    for reason, count in reasons.items():
        assert sample_sum(exposition, "robustwatch_dead_letters_total", reason=reason) == count
