"""One micro-batch through agent.detection: the outcome the runner applies."""

from __future__ import annotations

import numpy as np

from agent.config import config_from_dict
from agent.demo import traffic
from agent.detection import Detection
from agent.events import RawRecord
from agent.worker import MetricCalls


def _detection(tmp_path) -> Detection:
    np.save(tmp_path / "reference.npy", np.random.default_rng(0).normal(size=(100, 4)))
    config = config_from_dict(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"], "emit": "all"},
            "model": {"name": "m"},
            "reference": {"path": str(tmp_path / "reference.npy")},
            "detectors": {"drift": {"window": 10}},
        }
    )
    return Detection(config, MetricCalls())


def _records(n: int) -> list[RawRecord]:
    rows = np.random.default_rng(1).normal(size=(n, 4))
    return [
        RawRecord("t", 0, i, 0, key, value, ())
        for i, (key, value, _) in enumerate(
            traffic.plain_json(f"e{i}", r) for i, r in enumerate(rows)
        )
    ]


def test_an_outcome_counts_events_and_dead_letters_and_holds_the_results(tmp_path):
    detection = _detection(tmp_path)
    records = _records(12)
    records[3] = records[3]._replace(value=b"{broken")
    outcome = detection.process(records)
    assert outcome.events == 11 and outcome.incomplete == 0
    assert [(r.offset, e.reason) for r, e in outcome.dead_letters] == [(3, "invalid-json")]
    assert [r.id for r in outcome.results] == [f"e{i}" for i in range(12) if i != 3]
    assert outcome.held == {} and outcome.pending_joins == 0


def test_a_decoder_bug_dead_letters_the_batch_and_the_agent_goes_on(tmp_path, monkeypatch):
    detection = _detection(tmp_path)

    def broken(records):
        raise RuntimeError("a bug")

    monkeypatch.setattr(detection.decoder, "decode_batch", broken)
    outcome = detection.process(_records(5))
    assert [e.reason for _, e in outcome.dead_letters] == ["decoder-failure"] * 5
    assert "RuntimeError: a bug" in str(outcome.dead_letters[0][1])
    assert outcome.events == 0 and outcome.results == []
    monkeypatch.undo()
    assert detection.process(_records(5)).events == 5
