"""Detection in a worker process (agent.worker): the same results, dead letters, metrics and
commits as in the runner's own process, clear errors when the worker cannot start or dies,
and the stateful detector's state saved when it stops."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from agent.config import config_from_dict
from agent.demo import traffic
from agent.exceptions import StartupError, WorkerError
from agent.runner import Agent
from agent.source import PartitionBatch
from agent.worker import DetectionWorker, MetricCalls
from tests.agent.stateful_config import stateful_section
from tests.agent.test_runner_commits import FakeSink, FakeSource, LoopSource

SALT = "an example salt of 32 bytes, ok!"
N_FEATURES = 16
TOPIC = "in"


def _config(tmp_path: Path, worker: bool, **stateful):
    reference = tmp_path / "reference.npy"
    if not reference.exists():
        np.save(reference, np.random.default_rng(0).normal(size=(300, N_FEATURES)))
    return config_from_dict(
        {
            "kafka": {
                "bootstrap_servers": "127.0.0.1:9",
                "topics": [TOPIC],
                "format": "plain-json",
                "emit": "all",
            },
            "model": {"name": "m"},
            "reference": {"path": str(reference)},
            "detectors": {
                "drift": {"window": 60},
                "stateful": stateful_section(8, **stateful),
            },
            "metrics": {"port": 0},
            "pipeline": {"worker_process": worker, "commit_interval_seconds": 0},
        },
        env={"SALT": SALT},
    )


def _batches(n_batches: int = 6, per_batch: int = 40) -> list[list[PartitionBatch]]:
    """Polls of clean rows, a drifted phase, one prober, and some malformed records."""
    rng = np.random.default_rng(1)
    polls, offset = [], 0
    base = rng.normal(size=N_FEATURES)
    for b in range(n_batches):
        x = rng.normal(size=(per_batch, N_FEATURES)) + (1.5 if b >= n_batches // 2 else 0.0)
        x[::4] = base + rng.choice([-0.01, 0.0, 0.01], (len(x[::4]), N_FEATURES))
        records = []
        for i, row in enumerate(x.round(5)):
            client = "mallory" if i % 4 == 0 else f"user-{i % 7}"
            records.append(traffic.plain_json(f"e{offset + i}", row, client_id=client))
        records[5] = (b"bad", b"{not json", [])
        records[9] = (b"short", traffic.plain_json("short", np.zeros(3))[1], [])
        n = len(records)
        polls.append(
            [
                PartitionBatch(
                    TOPIC,
                    0,
                    list(range(offset, offset + n)),
                    [1_700_000_000_000 + o for o in range(offset, offset + n)],
                    [k for k, _, _ in records],
                    [v for _, v, _ in records],
                    [tuple(h or ()) for _, _, h in records],
                )
            ]
        )
        offset += n
    return polls


def _exposition(agent: Agent) -> list[str]:
    """The metric samples, less the ones that time the batches or their own creation."""
    return [
        line
        for line in generate_latest(agent.registry).decode().splitlines()
        if not line.startswith(("robustwatch_batch_duration_seconds", "#"))
        and "_created" not in line
    ]


def _started(agent: Agent) -> DetectionWorker:
    agent._worker = DetectionWorker.start(agent.config, agent.metrics, threading.Event())
    return agent._worker


def _drain(agent: Agent, sink: FakeSink) -> None:
    while agent._worker.outstanding:
        agent._collect(sink, 5.0)


def test_the_worker_gives_what_the_runners_own_process_gives(tmp_path):
    inline, worker = Agent(_config(tmp_path, False)), Agent(_config(tmp_path, True))
    assert inline.detection is not None and worker.detection is None
    inline_sink, worker_sink = FakeSink(), FakeSink()
    _started(worker)
    try:
        for poll in _batches():
            inline._process([r for b in poll for r in b.records()], inline_sink)
            worker._submit(poll)
        _drain(worker, worker_sink)
    finally:
        worker._worker.stop(10)

    def results(sink):
        return [(r.id, r.flags, json.loads(r.value)["scores"]) for r in sink.sent]

    assert results(worker_sink) == results(inline_sink)
    flags = {flag for _, flags, _ in results(inline_sink) for flag in flags}
    assert {"drift:ks", "query-attack"} <= flags  # both detectors had something to say
    assert len(worker_sink.dead) == len(inline_sink.dead) == 12
    assert _exposition(worker) == _exposition(inline)
    assert (
        worker.registry.get_sample_value(
            "robustwatch_dead_letters_total", {"reason": "invalid-json"}
        )
        == 6
    )


def test_commits_wait_for_the_workers_outcome_and_then_for_the_acknowledgements(tmp_path):
    agent, sink, source = Agent(_config(tmp_path, True)), FakeSink(), FakeSource()
    _started(agent)
    try:
        first, second = _batches(2)
        agent._submit(first)
        agent._commit_completed(source)
        assert source.commits == []  # at the worker: nothing sent yet
        agent._submit(second)
        _drain(agent, sink)
        agent._commit_completed(source)
        assert source.commits == []  # sent, not acknowledged
        for future in sink.futures():
            future.succeed()
        agent._commit_completed(source)
        assert source.last == {(TOPIC, 0): 80}
    finally:
        agent._worker.stop(10)


def test_a_worker_that_cannot_build_its_detectors_is_a_startup_error(tmp_path):
    config = _config(tmp_path, True)
    (tmp_path / "reference.npy").unlink()
    with pytest.raises(StartupError, match=r"building the detectors failed: .*reference\.npy"):
        DetectionWorker.start(config, MetricCalls(), threading.Event())


def test_a_dead_worker_is_a_worker_error_naming_its_exit_code(tmp_path):
    agent = Agent(_config(tmp_path, True))
    worker = _started(agent)
    worker.kill()
    with pytest.raises(WorkerError, match=r"exit code -9.*read again"):
        agent._submit(_batches(1)[0])
        agent._collect(FakeSink(), 5.0)


def test_stopping_the_worker_saves_the_stateful_state(tmp_path):
    state = tmp_path / "state.npz"
    agent = Agent(_config(tmp_path, True, state_file=str(state)))
    worker = _started(agent)
    agent._submit(_batches(1)[0])
    _drain(agent, FakeSink())
    worker.stop(10)
    assert state.exists()
    restored = Agent(_config(tmp_path, False, state_file=str(state)))
    (feed,) = [d for d in restored.detection.pipeline.detectors if d.name == "query-attack"]
    assert feed.detector.snapshot().fingerprints > 0


def test_a_stuck_worker_turns_healthz_red_and_a_recovered_one_green(tmp_path):
    agent, sink = Agent(_config(tmp_path, True)), FakeSink()
    agent.health.stall_seconds = 0.5
    worker = _started(agent)
    stop = threading.Event()
    agent.health.beat()  # the loop's first turn
    os.kill(worker._process.pid, signal.SIGSTOP)  # as a detector stuck in a loop would be
    try:
        agent._submit(_batches(1)[0])
        time.sleep(0.6)
        agent._consume(LoopSource(stop, polls=3), sink, stop)
        assert worker.stalled_for() > 0.5
        alive, reason = agent.health.alive()
        assert not alive and "detection is stuck" in reason
    finally:
        os.kill(worker._process.pid, signal.SIGCONT)
    try:
        _drain(agent, sink)
        assert worker.stalled_for() == 0.0
        stop.clear()
        agent._consume(LoopSource(stop, polls=1), sink, stop)
        assert agent.health.alive() == (True, "ok")
    finally:
        worker.stop(10)


def test_a_worker_whose_runner_is_gone_exits_quietly(tmp_path):
    agent = Agent(_config(tmp_path, True))
    worker = _started(agent)
    agent._submit(_batches(1)[0])
    worker._receiver.close()  # as if the runner had been killed mid-batch
    worker._sender.close()
    worker._process.join(30)
    assert worker._process.exitcode == 0


def test_a_partition_batch_gives_its_records_in_order_and_refuses_ragged_columns():
    batch = PartitionBatch(
        TOPIC, 2, [7, 8], [1_700_000_000_000, None], [b"k", None], [b"{}", b""],
        [(("client-id", b"c1"),), ()],
    )  # fmt: skip
    records = batch.records()
    assert [type(r).__name__ for r in records] == ["RawRecord", "RawRecord"]
    assert records[0] == (TOPIC, 2, 7, 1_700_000_000_000, b"k", b"{}", (("client-id", b"c1"),))
    assert (records[1].offset, records[1].timestamp_ms, records[1].key) == (8, None, None)
    ragged = batch._replace(values=[b"{}"])
    with pytest.raises(ValueError):
        ragged.records()
