"""The runner's commit rule, without a broker: what may be committed, and when."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from agent.config import config_from_dict
from agent.demo import traffic
from agent.events import RawRecord
from agent.runner import Agent
from agent.source import PartitionBatch
from agent.worker import DetectionWorker

TOPIC = "in"


class FakeFuture:
    def __init__(self) -> None:
        self.is_done = False
        self.exception: Exception | None = None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def succeed(self) -> None:
        self.is_done = True

    def fail(self, exc: Exception) -> None:
        self.is_done, self.exception = True, exc


class FakeSink:
    def __init__(self) -> None:
        self.results: list[tuple[str, FakeFuture]] = []
        self.sent: list = []  # the result records, in order
        self.dead: list[FakeFuture] = []

    def send_result(self, result):
        future = FakeFuture()
        self.results.append((result.id, future))
        self.sent.append(result)
        return future

    @staticmethod
    def await_acks(futures, timeout_seconds):  # the tests acknowledge by hand, never meanwhile
        pass

    def send_dead_letter(self, record, error):
        future = FakeFuture()
        self.dead.append(future)
        return future

    def futures(self) -> list[FakeFuture]:
        return [f for _, f in self.results] + self.dead

    def future_of(self, event_id: str) -> FakeFuture:
        return next(f for i, f in self.results if i == event_id)


class FakeSource:
    def __init__(self) -> None:
        self.commits: list[dict] = []
        self.seeks: dict = {}

    def commit(self, offsets, sync=False, timeout_ms=None):
        self.commits.append(dict(offsets))

    def assignment(self):
        return {(TOPIC, 0)}

    def committed(self, partition):
        return None

    def seek(self, partition, offset):
        self.seeks[partition] = offset

    @property
    def last(self) -> dict:
        return self.commits[-1] if self.commits else {}


def _agent(worker_process: bool = False) -> Agent:
    config = config_from_dict(
        {
            "kafka": {
                "bootstrap_servers": "127.0.0.1:9",
                "topics": [TOPIC],
                "format": "kserve-cloudevents",
                "emit": "all",
            },
            "model": {"name": "m"},
            "metrics": {"port": 0},
            "pipeline": {"commit_interval_seconds": 0, "worker_process": worker_process},
        }
    )
    return Agent(config)


def _records(event_id: str, offsets: tuple[int, int]) -> list[RawRecord]:
    pair = traffic.kserve_cloudevents(event_id, np.zeros(4), np.ones(2))
    return [
        RawRecord(TOPIC, 0, offset, 0, key, value, tuple(headers))
        for offset, (key, value, headers) in zip(offsets, pair, strict=True)
    ]


def test_a_record_held_for_a_join_holds_the_commit_until_its_event_is_acknowledged():
    agent, sink, source = _agent(), FakeSink(), FakeSource()
    a_request, a_response = _records("a", (0, 3))
    c_request, c_response = _records("c", (1, 2))

    agent._process([a_request, c_request, c_response], sink)  # a waits for its response
    agent._process([a_response], sink)  # a joins: its event rides in the second batch
    sink.future_of("c").succeed()
    agent._commit_completed(source)
    # The first batch is acknowledged, but request a (offset 0) is in the unacknowledged
    # second batch: nothing past it may be committed.
    assert source.last.get((TOPIC, 0), 0) == 0

    sink.future_of("a").succeed()
    agent._commit_completed(source)
    assert source.last == {(TOPIC, 0): 4}


def test_batches_are_committed_in_order():
    agent, sink, source = _agent(), FakeSink(), FakeSource()
    agent._process(_records("x", (0, 1)), sink)
    agent._process(_records("y", (2, 3)), sink)
    sink.future_of("y").succeed()
    agent._commit_completed(source)
    assert source.commits == []  # x is not acknowledged yet
    sink.future_of("x").succeed()
    agent._commit_completed(source)
    assert source.last == {(TOPIC, 0): 4}


def test_a_failed_produce_rewinds_to_the_last_commit():
    agent, sink, source = _agent(), FakeSink(), FakeSource()
    agent._process(_records("x", (0, 1)), sink)
    sink.future_of("x").succeed()
    agent._commit_completed(source)
    assert source.last == {(TOPIC, 0): 2}
    agent._process(_records("y", (2, 3)), sink)
    sink.future_of("y").fail(RuntimeError("broker gone"))
    agent._commit_completed(source)
    assert source.seeks == {(TOPIC, 0): 2}
    assert source.last == {(TOPIC, 0): 2}  # nothing committed past the failure
    assert not agent._inflight


def test_dead_letters_count_as_produced_records():
    agent, sink, source = _agent(), FakeSink(), FakeSource()
    broken = RawRecord(TOPIC, 0, 0, 0, b"k", b"{", (("ce_id", b"z"),))
    agent._process([broken], sink)
    agent._commit_completed(source)
    assert source.commits == []
    sink.dead[0].succeed()
    agent._commit_completed(source)
    assert source.last == {(TOPIC, 0): 1}


def test_commits_are_spaced_by_the_commit_interval_and_none_is_lost():
    agent, sink, source = _agent(), FakeSink(), FakeSource()
    agent._next_commit = float("inf")  # as if a commit had just been made
    agent._process(_records("x", (0, 1)), sink)
    sink.future_of("x").succeed()
    agent._commit_completed(source)
    assert source.commits == []  # acknowledged, but the interval has not passed
    agent._next_commit = 0.0
    agent._commit_completed(source)  # nothing new completed, yet the pending commit is made
    assert source.last == {(TOPIC, 0): 2}


class LoopSource(FakeSource):
    """Hands out a batch per poll unless paused; stops the loop after ``polls`` polls."""

    def __init__(self, stop, polls: int) -> None:
        super().__init__()
        self.stop, self.polls_left, self.paused = stop, polls, False
        self.offset, self.has_joined, self.pauses = 0, True, 0

    def poll(self, timeout_ms, max_records):
        self.polls_left -= 1
        if self.polls_left <= 0:
            self.stop.set()
        if self.paused:
            return []
        records = _records(f"e{self.offset}", (self.offset, self.offset + 1))
        self.offset += 2
        return _as_batch(records)

    def take_revoked(self):
        return set()

    def pause(self):  # idempotent, as KafkaSource.pause is
        self.pauses += not self.paused
        self.paused = True

    def resume(self):
        self.paused = False

    def lags(self):
        return {}


def test_the_consumer_pauses_while_too_many_batches_wait_for_acknowledgement(agent_in_mode):
    agent, sink = agent_in_mode, FakeSink()
    limit = agent.config.pipeline.max_inflight_batches
    stop = threading.Event()
    source = LoopSource(stop, polls=50)
    agent._consume(source, sink, stop)  # nothing is ever acknowledged
    assert source.paused and source.pauses == 1
    assert len(agent._inflight) == limit  # memory stays bounded: no more batches were read
    assert source.offset == 2 * limit

    for _, future in sink.results:
        future.succeed()
    stop.clear()
    source.polls_left = 3
    agent._consume(source, sink, stop)
    assert source.offset > 2 * limit  # resumed once the batches were acknowledged
    assert source.last == {(TOPIC, 0): 2 * limit}


class PromptSink(FakeSink):
    """Its sends are acknowledged while the runner waits for them."""

    @staticmethod
    def await_acks(futures, timeout_seconds):
        for future in futures:
            future.succeed()


def test_a_full_queue_waits_for_its_oldest_batch_rather_than_pause(agent_in_mode):
    """A pause makes kafka-python park what it has fetched and refetch after the resume, so a
    queue that drains within a poll timeout is waited on, never paused."""
    agent, sink = agent_in_mode, PromptSink()
    limit = agent.config.pipeline.max_inflight_batches
    stop = threading.Event()
    source = LoopSource(stop, polls=6 * limit)
    agent._consume(source, sink, stop)
    assert source.pauses == 0
    assert source.offset == 2 * 6 * limit  # every poll was taken
    assert len(agent._inflight) <= limit


def _as_batch(records: list[RawRecord]) -> list[PartitionBatch]:
    columns = [list(column) for column in zip(*records, strict=True)]
    return [PartitionBatch(TOPIC, 0, *columns[2:])]


@pytest.fixture(params=[False, True], ids=["one-process", "worker"])
def agent_in_mode(request):
    """An agent detecting in its own process, or in a started worker process."""
    agent = _agent(worker_process=request.param)
    if request.param:
        agent._worker = DetectionWorker.start(agent.config, agent.metrics, threading.Event())
    yield agent
    if request.param:
        agent._worker.stop(10)


def _detect(agent: Agent, records: list[RawRecord], sink: FakeSink) -> None:
    """One poll's records through the agent, outcome applied, in either mode."""
    if agent._worker is None:
        agent._process(records, sink)
        return
    agent._submit(_as_batch(records))
    while agent._worker.outstanding:
        agent._collect(sink, 5.0)


def test_a_revoked_partition_loses_its_held_joins(agent_in_mode):
    agent, sink = agent_in_mode, FakeSink()
    request, response = _records("a", (0, 1))
    _detect(agent, [request], sink)  # held for its response
    assert agent._held_offsets() == {(TOPIC, 0): 0}
    agent._forget({(TOPIC, 0)})
    assert agent._held_offsets() == {}
    # The request is gone from the join buffer: its response now waits alone.
    _detect(agent, [response], sink)
    assert sink.results == [] and agent._held_offsets() == {(TOPIC, 0): 1}


def test_after_a_failed_produce_the_outcomes_of_dropped_batches_are_not_sent():
    agent, sink, source = _agent(worker_process=True), FakeSink(), FakeSource()
    agent._worker = DetectionWorker.start(agent.config, agent.metrics, threading.Event())
    try:
        _detect(agent, _records("w", (0, 1)), sink)
        sink.future_of("w").succeed()
        agent._commit_completed(source)
        assert source.last == {(TOPIC, 0): 2}
        _detect(agent, _records("x", (2, 3)), sink)
        agent._submit(_as_batch(_records("y", (4, 5))))  # at the worker during the rewind
        sink.future_of("x").fail(RuntimeError("broker gone"))
        agent._commit_completed(source)
        assert source.seeks == {(TOPIC, 0): 2} and not agent._inflight
        agent._collect(sink, 5.0)  # y's outcome arrives: dropped, y is read again
        assert [event_id for event_id, _ in sink.results] == ["w", "x"]
        assert source.last == {(TOPIC, 0): 2}
        assert agent._worker.outstanding == 0
    finally:
        agent._worker.stop(10)
