"""Per-input and stateful detectors in a running agent, on digits traffic through a real broker:
flags and reasons in the results topic, the detectors' metrics scraped and checked by promtool."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from agent.demo import traffic
from tests.detectors.adversarial.digits import digits, trained_cnn
from tests.e2e.harness import AgentProcess, agent_config, create_topics, produce, read_topic, unique

pytestmark = pytest.mark.e2e

SALT = "e2e salt: 16 bytes or more"
N_CLIENTS = 12
N_PROBES = 150


def _logits(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return trained_cnn()(torch.from_numpy(x.astype(np.float32))).numpy().round(5)


def test_adversarial_outlier_and_query_attack_flags_reach_results_and_metrics(broker, tmp_path):
    d = digits()
    rng = np.random.default_rng(3)
    torch.jit.script(trained_cnn()).save(tmp_path / "model.pt")
    np.savez(tmp_path / "reference.npz", x=d.x_ref, y=d.y_ref, outputs=_logits(d.x_ref))
    (tmp_path / "salt").write_text(SALT)
    topic = unique("adv")
    config = agent_config(
        broker.bootstrap_servers,
        topic,
        tmp_path,
        model={"path": str(tmp_path / "model.pt")},
        reference={"path": str(tmp_path / "reference.npz")},
        detectors={
            "drift": {"enabled": False},
            "adversarial": [
                {"type": "feature-squeezing", "squeezers": ["bit-depth"], "bits": 3, "fpr": 0.02}
            ],
            "outlier": [{"type": "energy", "fpr": 0.02}],
            "stateful": {
                "enabled": True,
                "salt_file": str(tmp_path / "salt"),
                "step": 0.1,
                "window_size": 4,
                "top_k": 30,
                "match_threshold": 15,
                "state_file": str(tmp_path / "state" / "stateful.npz"),
            },
        },
    )
    k = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic, k["results_topic"], k["dead_letter_topic"]])

    benign = d.x_test[:360]
    noise = rng.random((40, 1, 8, 8)).astype(np.float32)  # far from any digit
    base = d.x_test[400]
    flips = rng.choice([-0.1, 0.0, 0.1], (N_PROBES, 1, 8, 8), p=[0.03, 0.94, 0.03])
    probes = np.clip(base + flips, 0, 1).astype(np.float32)  # a query attack around one digit
    records, owner = [], {}
    streams = [
        ("b", benign, [f"user-{i % N_CLIENTS}" for i in range(len(benign))]),
        ("n", noise, ["scanner"] * len(noise)),
        ("p", probes, ["mallory"] * len(probes)),
    ]
    for prefix, x, clients in streams:
        for i, (row, client) in enumerate(zip(x, clients, strict=True)):
            event_id = f"{prefix}{i}"
            owner[event_id] = client
            records.append(
                traffic.oip_json(event_id, row.reshape(-1), _logits(row[None])[0], client)
            )
    order = rng.permutation(len(records))
    records = [records[i] for i in order]
    records.append(traffic.oip_json("short", np.ones(10), None, "user-0"))  # not 64 values
    produce(broker.bootstrap_servers, topic, records)

    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        agent.wait_metric("robustwatch_events_total", len(records), outcome="processed")
        _, exposition = agent.get("/metrics")
    finally:
        assert agent.stop() == 0, agent.log()
    assert SALT not in agent.log()

    results = {}
    for record in read_topic(broker.bootstrap_servers, k["results_topic"], len(records)):
        body = json.loads(record.value)
        results[body["id"]] = body
    assert set(results) == set(owner) | {"short"}

    def rate(prefix: str, flag: str) -> float:
        chosen = [r for i, r in results.items() if i.startswith(prefix)]
        return sum(flag in r["flags"] for r in chosen) / len(chosen)

    assert rate("b", "adversarial:squeeze") <= 0.06 and rate("b", "outlier:energy") <= 0.06
    assert rate("n", "outlier:energy") >= 0.5
    attacked = [i for i in results if owner.get(i) == "mallory"]
    assert sum("query-attack" in results[i]["flags"] for i in attacked) >= N_PROBES - 50
    assert not any(
        "query-attack" in r["flags"] for i, r in results.items() if owner.get(i) != "mallory"
    )
    assert all({"adversarial:squeeze", "outlier:energy", "query-attack"} <= set(r["scores"])
               for i, r in results.items() if i != "short")  # fmt: skip
    short = results["short"]
    assert {"error:squeeze", "error:energy"} <= set(short["flags"])
    assert short["errors"]["squeeze"] == "an input of 10 values; the model takes 64"
    assert short["errors"]["energy"] == "the event carries no outputs"

    assert "robustwatch_query_attack_suspects 1.0" in exposition
    n_attack = sum("query-attack" in results[i]["flags"] for i in attacked)
    line = f'robustwatch_flags_total{{detector="query-attack",model="digits"}} {float(n_attack)}'
    assert line in exposition
    scored = len(records) - 1
    count = 'robustwatch_detector_score_count{detector="adversarial:squeeze",model="digits"}'
    assert f"{count} {float(scored)}" in exposition
    entries = [line for line in exposition.splitlines() if line.startswith("robustwatch_stateful")]
    assert entries and float(entries[0].split()[-1]) > 0
    promtool = shutil.which("promtool")
    if promtool is not None:  # the exposition test says how to install it when missing
        check = subprocess.run(
            [promtool, "check", "metrics"], input=exposition.encode(), capture_output=True
        )
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()

    # Restarted on new traffic, the agent reads the state saved at SIGTERM back: mallory is
    # flagged from her first query after the restart, as nobody else is.
    state = tmp_path / "state" / "stateful.npz"
    assert state.is_file() and b"mallory" not in state.read_bytes()
    topic2 = unique("adv-restart")
    config["kafka"].update(
        topics=[topic2], group_id=unique("group"), results_topic=f"{topic2}.results",
        dead_letter_topic=f"{topic2}.dlq",
    )  # fmt: skip
    k2 = config["kafka"]
    create_topics(broker.bootstrap_servers, [topic2, k2["results_topic"], k2["dead_letter_topic"]])
    more = np.clip(base + rng.choice([-0.1, 0.0, 0.1], (5, 1, 8, 8), p=[0.03, 0.94, 0.03]), 0, 1)
    later = [("m", row, "mallory") for row in more.astype(np.float32)]
    later += [("u", row, f"user-{i}") for i, row in enumerate(d.x_test[360:365])]
    produce(
        broker.bootstrap_servers,
        topic2,
        [traffic.oip_json(f"{p}{i}", row.reshape(-1), _logits(row[None])[0], client)
         for i, (p, row, client) in enumerate(later)],
    )  # fmt: skip
    restarted = AgentProcess(config, tmp_path, name="restarted").start()
    try:
        restarted.wait_ready()
        restarted.wait_metric("robustwatch_events_total", len(later), outcome="processed")
    finally:
        assert restarted.stop() == 0, restarted.log()
    assert "stateful detection restored" in restarted.log()
    after = {
        json.loads(r.value)["id"]: json.loads(r.value)["flags"]
        for r in read_topic(broker.bootstrap_servers, k2["results_topic"], len(later))
    }
    assert all("query-attack" in after[f"m{i}"] for i in range(5))
    assert not any("query-attack" in after[f"u{i}"] for i in range(5, 10))
