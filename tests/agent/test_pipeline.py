"""The pipeline and its sliding drift window, on arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.events import InferenceEvent
from agent.pipeline import Pipeline, Verdict, WindowedDrift
from detectors.drift import KSDrift


def _events(x: np.ndarray) -> list[InferenceEvent]:
    return [
        InferenceEvent(f"e{i}", "m", None, 0.0, row, None, None, None, {})
        for i, row in enumerate(x)
    ]


@pytest.fixture
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1000, 3))


def test_the_window_holds_the_most_recent_rows_in_order(reference):
    seen = []

    class Recorder:
        def test(self, x):
            seen.append(x.copy())
            return KSDrift().fit(reference).test(x)

    windowed = WindowedDrift(Recorder(), "ks", window=4)
    rows = np.arange(30, dtype=float).reshape(10, 3)
    assert windowed.process(rows[:3]) == [Verdict()] * 3  # not full yet: no verdict
    verdicts = windowed.process(rows[3:10])
    np.testing.assert_array_equal(seen[0], rows[3:7])
    np.testing.assert_array_equal(seen[-1], rows[6:10])
    assert len(verdicts) == 7 and all(v.scores for v in verdicts)


def test_every_row_after_warm_up_takes_the_verdict_of_a_window_that_holds_it(reference):
    rng = np.random.default_rng(1)
    windowed = WindowedDrift(KSDrift().fit(reference), "ks", window=50)
    clean = windowed.process(rng.normal(size=(120, 3)))
    assert all(v.flag is None for v in clean[49:])
    shifted = windowed.process(rng.normal(loc=1.5, size=(120, 3)))
    assert shifted[-1].flag == "drift:ks"
    assert shifted[-1].scores["drift:ks"] < 1e-6


def test_pipeline_builds_one_result_per_event_and_flags_drifted_windows(reference):
    rng = np.random.default_rng(2)
    results_seen = []
    windowed = WindowedDrift(
        KSDrift(p_val=0.01).fit(reference),
        "ks",
        window=40,
        on_result=lambda name, r: results_seen.append((name, r.is_drift)),
    )
    pipeline = Pipeline("m", "1", [windowed], clock=lambda: 123.0)
    results = pipeline.process(_events(rng.normal(loc=2.0, size=(80, 3))))
    assert [r.id for r in results] == [f"e{i}" for i in range(80)]
    assert all("drift:ks" in r.flags for r in results[39:])
    assert results_seen and results_seen[-1] == ("ks", True)
    body = json.loads(results[-1].to_json())
    assert body["id"] == "e79" and body["model_version"] == "1" and body["processed_at"] == 123.0
    assert body["flags"] == ["drift:ks"] and 0 <= body["scores"]["drift:ks"] < 0.01


def test_a_failing_detector_flags_the_events_and_the_pipeline_goes_on():
    class Broken:
        name = "broken"

        def process(self, inputs):
            raise RuntimeError("boom")

    results = Pipeline("m", None, [Broken()]).process(_events(np.zeros((3, 2))))
    assert [r.flags for r in results] == [("error:broken",)] * 3


def test_flagged_only_keeps_the_flagged_results_in_order(reference):
    rng = np.random.default_rng(3)
    windowed = WindowedDrift(KSDrift(p_val=0.01).fit(reference), "ks", window=40)
    pipeline = Pipeline("m", None, [windowed])
    assert pipeline.process(_events(rng.normal(size=(80, 3))), flagged_only=True) == []
    drifted = _events(rng.normal(loc=2.0, size=(80, 3)))
    every = Pipeline("m", None, [WindowedDrift(KSDrift(p_val=0.01).fit(reference), "ks", 40)])
    expected = [r.id for r in every.process(drifted) if r.flags]
    assert [r.id for r in pipeline.process(drifted, flagged_only=True)] == expected
    assert expected
