"""Fixtures shared by every test: a real Kafka-protocol broker on loopback."""

from __future__ import annotations

import pytest

from agent.demo.broker import LocalBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """One broker for the whole run; each test uses topics of its own."""
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    with open(log_path, "wb") as log_file, LocalBroker(log_file=log_file) as running:
        yield running
