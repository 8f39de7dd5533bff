"""The command line as a user meets it: help with examples, bad configs, no broker."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from agent.demo.broker import free_port

pytestmark = pytest.mark.e2e


def robustwatch(*args: str, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize("command", [[], ["run"], ["demo"]])
def test_every_help_shows_an_example(command):
    done = robustwatch(*command, "--help")
    assert done.returncode == 0
    assert "example" in done.stdout.lower()
    assert "robustwatch " in done.stdout


VALID = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["in"]},
    "model": {"name": "m"},
}


def _with(path: str, value):
    config = yaml.safe_load(yaml.safe_dump(VALID))
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(leaf)
    else:
        node[leaf] = value
    return config


_DELETE = object()

BROKEN = [
    ("kafka.topics", []),
    ("kafka.topics", _DELETE),
    ("kafka.format", "avro"),
    ("kafka.emit", "sometimes"),
    ("kafka.max_record_bytes", "lots"),
    ("kafka.results_topic", "in"),
    ("kafka.consumer.enable_auto_commit", True),
    ("kafka.consumer.max_pol_records", 10),
    ("kafka.producer.acks", 0),
    ("model.name", _DELETE),
    ("detectors.drift.p_val", 1.5),
    ("detectors.drift.window", 1),
    ("metrics.port", 70000),
    ("reference.path", "/nonexistent/reference.npy"),
    ("pipeline.max_inflight_batches", 0),
    ("kafka.colour", "blue"),
]


@pytest.mark.parametrize(("key", "value"), BROKEN, ids=[k for k, _ in BROKEN])
def test_a_broken_config_exits_2_naming_the_key(tmp_path, key, value):
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(_with(key, value)))
    done = robustwatch("run", "--config", str(path))
    assert done.returncode == 2, done.stderr
    assert key in done.stderr
    assert "Traceback" not in done.stderr


def test_unparsable_yaml_and_missing_file_exit_2(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("kafka: [unclosed\n")
    done = robustwatch("run", "--config", str(path))
    assert done.returncode == 2 and "line" in done.stderr
    done = robustwatch("run", "--config", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "missing.yaml" in done.stderr


def test_an_unreachable_broker_is_retried_then_reported_without_a_traceback(tmp_path):
    config = _with("kafka.bootstrap_servers", f"127.0.0.1:{free_port()}")
    config["pipeline"] = {"startup_retry_max_seconds": 3}
    config["metrics"] = {"host": "127.0.0.1", "port": 0}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    done = robustwatch("run", "--config", str(path))
    assert done.returncode == 3, done.stderr
    assert "retrying in" in done.stderr
    assert "could not reach Kafka" in done.stderr
    assert "Traceback" not in done.stderr
