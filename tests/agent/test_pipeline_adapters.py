"""The pipeline's stream adapters for every drift family, and what the pipeline feeds them."""

from __future__ import annotations

import numpy as np
import pytest

from agent.events import InferenceEvent
from agent.pipeline import NO_VERDICT, OnlineDrift, Pipeline, Verdict, WindowedDrift
from detectors.drift import MMDDriftOnline, WassersteinDrift
from detectors.exceptions import DataError


def _events(rows, outputs=None) -> list[InferenceEvent]:
    outs = [None] * len(rows) if outputs is None else outputs
    return [
        InferenceEvent(f"e{i}", "m", None, 0.0, np.asarray(row, dtype=float), outs[i], None,
                       None, {})
        for i, row in enumerate(rows)
    ]  # fmt: skip


@pytest.fixture
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(500, 3))


def test_a_windowed_distance_scores_its_statistic(reference):
    windowed = WindowedDrift(WassersteinDrift(threshold=0.5).fit(reference), "w", window=50)
    rng = np.random.default_rng(1)
    clean = windowed.process(rng.normal(size=(50, 3)))
    assert clean[-1].flag is None
    assert clean[-1].scores["drift:w"] == pytest.approx(windowed.last_result.statistic)
    shifted = windowed.process(rng.normal(loc=2.0, size=(50, 3)))
    assert shifted[-1].flag == "drift:w" and shifted[-1].scores["drift:w"] > 1.0


def test_a_window_refuses_rows_of_another_width_before_they_enter_it(reference):
    windowed = WindowedDrift(WassersteinDrift().fit(reference), "w", window=10)
    windowed.process(np.zeros((5, 3)))
    with pytest.raises(DataError, match="events with 4 features reached the window of w"):
        windowed.process(np.zeros((2, 4)))
    assert windowed._filled == 5


def test_online_each_event_takes_its_own_step(reference):
    detector = MMDDriftOnline(ert=100, window_size=5, n_bootstraps=1000, seed=0).fit(reference)
    seen = []
    online = OnlineDrift(detector, "mo", on_result=lambda name, r: seen.append((name, r)))
    rng = np.random.default_rng(2)
    verdicts = online.process(rng.normal(size=(10, 3)))
    assert verdicts[:4] == [NO_VERDICT] * 4  # the window fills: no statistic yet
    result = seen[-1][1]
    assert seen[-1][0] == "mo" and result.step == 10
    scores = [v.scores["drift:mo"] for v in verdicts[4:]]
    np.testing.assert_allclose(scores, result.step_statistics[4:])
    drifted = online.process(rng.normal(loc=3.0, size=(10, 3)))
    stats, thresholds = online.last_result.step_statistics, online.last_result.step_thresholds
    assert [v.flag for v in drifted] == [
        "drift:mo" if s > t else None for s, t in zip(stats, thresholds, strict=True)
    ]
    assert drifted[-1].flag == "drift:mo"


def test_the_pipeline_gives_output_readers_the_events_outputs():
    class Outputs:
        name = "outs"
        reads = "outputs"

        def __init__(self):
            self.seen = None

        def process(self, outputs):
            self.seen = outputs
            return [Verdict("x:outs" if o is not None else None) for o in outputs]

    class Inputs:
        name = "ins"

        def process(self, inputs):
            assert inputs.shape == (3, 2) and inputs.dtype == np.float64
            return [NO_VERDICT] * len(inputs)

    reader = Outputs()
    outs = [np.array([0.2, 0.8]), None, np.array([1.0, 0.0])]
    results = Pipeline("m", None, [Inputs(), reader]).process(_events(np.zeros((3, 2)), outs))
    assert reader.seen == outs
    assert [r.flags for r in results] == [("x:outs",), (), ("x:outs",)]


def test_rows_of_differing_widths_reach_detectors_in_runs_each_failing_alone():
    class Strict:
        name = "strict"

        def __init__(self):
            self.calls = []

        def process(self, inputs):
            self.calls.append(inputs.shape)
            if inputs.shape[1] != 2:
                raise DataError("wrong width")
            return [Verdict(None, {"s": 1.0})] * len(inputs)

    rows = [[0, 0], [1, 1], [0, 0, 0], [2, 2], [3, 3]]
    strict = Strict()
    results = Pipeline("m", None, [strict]).process(_events(rows))
    assert strict.calls == [(2, 2), (1, 3), (2, 2)]
    assert [r.flags for r in results] == [(), (), ("error:strict",), (), ()]
    assert [r.scores for r in results] == [{"s": 1.0}] * 2 + [{}] + [{"s": 1.0}] * 2
