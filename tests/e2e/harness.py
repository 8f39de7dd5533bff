"""Helpers for whole-system tests: topics, traffic, an agent in its own process, scrapes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path

import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from agent.demo.broker import free_port

#: Consumer settings that keep group joins short on a test broker: the broker holds a new
#: member's JoinGroup for the rebalance timeout, which kafka-python takes from
#: max_poll_interval_ms.
FAST_CONSUMER = {
    "max_poll_interval_ms": 3000,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 3) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, records, linger_ms: int = 20) -> None:
    """Send ``(key, value, headers)`` records and wait for every acknowledgement."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all", max_request_size=32 * 2**20
    )
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h or None) for k, v, h in records]
        producer.flush(60)
        for f in futures:
            f.get(30)
    finally:
        producer.close(5)


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0, settle: float = 1.0
) -> list:
    """All records of ``topic`` (every partition, from the start).

    Reads until at least ``expected`` records arrived and nothing new came for ``settle``
    seconds, or ``timeout`` passed.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if partitions is None:
            return []
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list = []
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
            if batch:
                last_new = time.monotonic()
            elif len(records) >= expected and time.monotonic() - last_new >= settle:
                break
        return records
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        return {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(partitions)}
    finally:
        consumer.close(autocommit=False)


def agent_config(bootstrap: str, topic: str, tmp_path: Path, **sections) -> dict:
    """A config for a test agent with its own group, topics and metrics port."""
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topics": [topic],
            "group_id": unique("group"),
            "results_topic": f"{topic}.results",
            "dead_letter_topic": f"{topic}.dlq",
            "emit": "all",
            "consumer": dict(FAST_CONSUMER),
        },
        "model": {"name": "digits", "version": "1"},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"level": "INFO"},
    }
    for name, section in sections.items():
        config.setdefault(name, {}).update(section)
    return config


class AgentProcess:
    """``robustwatch run`` in a child process, with its config in a file."""

    def __init__(self, config: dict, tmp_path: Path, name: str = "agent"):
        self.config = config
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp_path / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.metrics_url = f"http://127.0.0.1:{config['metrics']['port']}"

    def start(self) -> AgentProcess:
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(self.config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log_file.close()
        return self

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent not ready in {timeout} s; log:\n{self.log()}")

    def metric(self, name: str, **labels) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        _, text = self.get("/metrics")
        return sample_sum(text, name, **labels)

    def wait_metric(self, name: str, at_least: float, timeout: float = 60.0, **labels) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            self.assert_running()
            value = self.metric(name, **labels)
            if value >= at_least:
                return value
            time.sleep(0.2)
        raise AssertionError(
            f"{name}{labels} = {value} < {at_least} after {timeout} s; log:\n{self.log()}"
        )

    def assert_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited with {self.process.returncode}; log:\n{self.log()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def sample_sum(text: str, name: str, **labels) -> float:
    total = 0.0
    for metric, label_text, value in _SAMPLE.findall(text):
        if metric != name:
            continue
        have = dict(_LABEL.findall(label_text or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            total += float(value)
    return total
